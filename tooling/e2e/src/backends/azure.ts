// The Azure backend of the end-to-end suites: the azure plugin artifact (packages/azure/dist/plugin) against Azurite.
// "Stopping the backend" stops Azurite by PID and restarts it on the same port and data folder.
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { startAzurite, type StartedAzurite } from '@orthanc-object-storage/servers';
import type { BackendStore, E2EBackend, MasterKeyFile } from './backend.js';
import { artifactDir, releaseTarball } from '../harness/repo.js';

const ARTIFACT = path.join(artifactDir('azure'), 'libOrthancAzureBlobStorage.so');

class AzuriteStore implements BackendStore {
  constructor(
    private readonly server: () => StartedAzurite,
    private readonly container: ContainerClient,
    private readonly backend: AzuriteBackend,
  ) {}

  /** No "/": the suite names Orthanc's work folder after the last path segment of this. */
  get location(): string {
    return `azurite-container:${this.container.containerName}@127.0.0.1:${this.server().port}`;
  }

  section(encryption: MasterKeyFile | undefined): Record<string, unknown> {
    return {
      ConnectionString: this.server().connectionString,
      ContainerName: this.container.containerName,
      ...(encryption && { StorageEncryption: { Enable: true, MasterKey: [encryption.id, encryption.path] } }),
    };
  }

  async listObjects(): Promise<string[]> {
    const names: string[] = [];
    if (!(await this.container.exists())) return names;
    for await (const blob of this.container.listBlobsFlat()) names.push(blob.name);
    return names.sort();
  }

  async readObjectHead(name: string, bytes: number): Promise<Buffer> {
    return this.container.getBlobClient(name).downloadToBuffer(0, bytes);
  }

  async downloadObject(name: string, file: string): Promise<void> {
    const response = await this.container.getBlobClient(name).download();
    if (response.readableStreamBody === undefined) throw new Error(`no body for ${name}`);
    await pipeline(response.readableStreamBody, createWriteStream(file));
  }

  async writeObject(name: string, bytes: Buffer): Promise<void> {
    await this.container.getBlockBlobClient(name).uploadData(bytes);
  }

  interrupt(): Promise<void> {
    return this.backend.stopServer();
  }

  resume(): Promise<void> {
    return this.backend.restartServer();
  }
}

/** Azurite on one port and one data folder for the whole suite; each store is a fresh container. */
export class AzuriteBackend implements E2EBackend {
  readonly name = 'azure';
  readonly artifactPath = ARTIFACT;
  readonly releaseTarball = releaseTarball('azure');
  readonly sectionName = 'AzureBlobStorage';
  readonly pluginId = 'Azure Blob Storage';
  private server: StartedAzurite | undefined;
  private stopped = false;
  private location = '';
  private count = 0;

  async setUp(workDir: string): Promise<void> {
    if (!existsSync(ARTIFACT)) {
      throw new Error(`${ARTIFACT} is missing: build it first (cd packages/azure && pnpm build)`);
    }
    this.location = path.join(workDir, 'azurite');
    await mkdir(this.location, { recursive: true });
    this.server = await startAzurite({ location: this.location });
  }

  async tearDown(): Promise<void> {
    await this.server?.stop();
  }

  async stopServer(): Promise<void> {
    if (this.stopped) return;
    await this.current().stop();
    this.stopped = true;
  }

  async restartServer(): Promise<void> {
    if (!this.stopped) return;
    // Same port: the plugins already running keep their connection string.
    this.server = await startAzurite({ location: this.location, port: this.current().port });
    this.stopped = false;
  }

  async createStore(label: string): Promise<BackendStore> {
    const name = `e2e-${String(++this.count).padStart(2, '0')}-${label}`
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-')
      .replace(/-+/g, '-')
      .slice(0, 63)
      .replace(/-$/, '');
    // Azurite restarts on the same port, so this client stays valid across interrupt/resume.
    const container = BlobServiceClient.fromConnectionString(
      this.current().connectionString,
    ).getContainerClient(name);
    return new AzuriteStore(() => this.current(), container, this);
  }

  private current(): StartedAzurite {
    if (this.server === undefined) throw new Error('AzuriteBackend: setUp() first');
    return this.server;
  }
}

export function azureBackend(): E2EBackend {
  return new AzuriteBackend();
}
