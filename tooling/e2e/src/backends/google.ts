// The Cloud Storage backend of the end-to-end suites: firebase-tools' storage emulator (tooling/servers)
// and the google plugin artifact. The gateway reaches the emulator through STORAGE_EMULATOR_HOST,
// which it inherits from Orthanc, which inherits it from this process.
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Storage } from '@google-cloud/storage';
import { startGcsEmulator, type StartedGcsEmulator } from '@orthanc-object-storage/servers';
import type { BackendStore, E2EBackend, MasterKeyFile } from './backend.js';
import { artifactDir, releaseTarball } from '../harness/repo.js';

class GcsStore implements BackendStore {
  constructor(
    private readonly emulator: StartedGcsEmulator,
    private readonly storage: Storage,
    private readonly bucketName: string,
  ) {}

  /** The suite names Orthanc's work folder after the last `/` segment: keep it the bucket name. */
  get location(): string {
    return `gs://${this.bucketName}`;
  }

  section(encryption: MasterKeyFile | undefined): Record<string, unknown> {
    return {
      BucketName: this.bucketName,
      ...(encryption && { StorageEncryption: { Enable: true, MasterKey: [encryption.id, encryption.path] } }),
    };
  }

  async listObjects(): Promise<string[]> {
    const [files] = await this.storage.bucket(this.bucketName).getFiles();
    return files.map((file) => file.name).sort();
  }

  async readObjectHead(name: string, bytes: number): Promise<Buffer> {
    const [data] = await this.storage
      .bucket(this.bucketName)
      .file(name)
      .download({ start: 0, end: bytes - 1 });
    return data;
  }

  async downloadObject(name: string, file: string): Promise<void> {
    await pipeline(
      this.storage.bucket(this.bucketName).file(name).createReadStream(),
      createWriteStream(file),
    );
  }

  async writeObject(name: string, bytes: Buffer): Promise<void> {
    await this.storage.bucket(this.bucketName).file(name).save(bytes, { resumable: false });
  }

  async interrupt(): Promise<void> {
    await this.emulator.setBucketAvailable(this.bucketName, false);
  }

  async resume(): Promise<void> {
    await this.emulator.setBucketAvailable(this.bucketName, true);
  }
}

export function googleBackend(): E2EBackend {
  let emulator: StartedGcsEmulator | undefined;
  let storage: Storage | undefined;
  const savedHost = process.env.STORAGE_EMULATOR_HOST;
  let count = 0;
  return {
    name: 'google',
    artifactPath: path.join(artifactDir('google'), 'libOrthancGoogleCloudStorage.so'),
    releaseTarball: releaseTarball('google'),
    sectionName: 'GoogleCloudStorage',
    pluginId: 'Google Cloud Storage',
    async setUp() {
      emulator = await startGcsEmulator();
      process.env.STORAGE_EMULATOR_HOST = emulator.apiEndpoint;
      storage = new Storage({ apiEndpoint: emulator.apiEndpoint, projectId: emulator.projectId });
    },
    async tearDown() {
      if (savedHost === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = savedHost;
      await emulator?.stop();
    },
    async createStore(label: string) {
      if (emulator === undefined || storage === undefined) throw new Error('googleBackend: setUp() first');
      const bucketName = `e2e-${String(++count).padStart(2, '0')}-${label}`
        .toLowerCase()
        .replace(/[^a-z0-9-]/g, '-');
      await storage.createBucket(bucketName);
      return new GcsStore(emulator, storage, bucketName);
    },
  };
}
