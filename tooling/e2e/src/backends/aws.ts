// S3 for the end-to-end suites: Ceph RGW from Debian (tooling/servers) and the aws plugin
// artifact. "Stopping the backend" stops radosgw only: the OSD keeps the objects, and radosgw
// comes back on the same port.
import { createWriteStream, existsSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { startRadosgw, type Radosgw, rgwClientConfig } from '@orthanc-object-storage/servers';
import type { BackendStore, E2EBackend, MasterKeyFile } from './backend.js';
import { artifactDir, releaseTarball } from '../harness/repo.js';

const ARTIFACT = path.join(artifactDir('aws'), 'libOrthancAwsS3Storage.so');

class RgwStore implements BackendStore {
  constructor(
    private readonly rgw: Radosgw,
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  /** The suite names Orthanc's work folder after the last `/` segment: keep it the bucket name. */
  get location(): string {
    return `s3://${this.bucket}`;
  }

  section(encryption: MasterKeyFile | undefined): Record<string, unknown> {
    return {
      BucketName: this.bucket,
      Region: this.rgw.region,
      Endpoint: this.rgw.endpoint,
      VirtualAddressing: false,
      AccessKey: this.rgw.accessKey,
      SecretKey: this.rgw.secretKey,
      // A stopped server must fail calls quickly rather than retry for minutes.
      MaxRetries: 1,
      ConnectionTimeout: 5,
      RequestTimeout: 30,
      ...(encryption && { StorageEncryption: { Enable: true, MasterKey: [encryption.id, encryption.path] } }),
    };
  }

  async listObjects(): Promise<string[]> {
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) if (object.Key !== undefined) names.push(object.Key);
      token = page.NextContinuationToken;
    } while (token !== undefined);
    return names.sort();
  }

  private async body(name: string, range?: string): Promise<Readable> {
    const output = await this.s3.send(
      new GetObjectCommand({ Bucket: this.bucket, Key: name, ...(range && { Range: range }) }),
    );
    return output.Body as Readable;
  }

  async readObjectHead(name: string, bytes: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.body(name, `bytes=0-${bytes - 1}`)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async downloadObject(name: string, file: string): Promise<void> {
    await pipeline(await this.body(name), createWriteStream(file));
  }

  async writeObject(name: string, bytes: Buffer): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: name, Body: bytes }));
  }

  interrupt(): Promise<void> {
    return this.rgw.stopGateway();
  }

  resume(): Promise<void> {
    return this.rgw.startGateway();
  }
}

/** `rgwMemoryBytes`: the in-memory OSD's size (default 3 GiB), for tests that store more. */
export function awsBackend(options: { rgwMemoryBytes?: number } = {}): E2EBackend {
  let rgw: Radosgw | undefined;
  let s3: S3Client | undefined;
  let count = 0;
  return {
    name: 'aws',
    artifactPath: ARTIFACT,
    releaseTarball: releaseTarball('aws'),
    sectionName: 'AwsS3Storage',
    pluginId: 'AWS S3 Storage',
    async setUp(workDir: string) {
      if (!existsSync(ARTIFACT)) {
        throw new Error(`${ARTIFACT} is missing: build it first (cd packages/aws && pnpm build)`);
      }
      rgw = await startRadosgw({
        workDir: path.join(workDir, 'radosgw'),
        ...(options.rgwMemoryBytes === undefined ? {} : { memoryBytes: options.rgwMemoryBytes }),
      });
      s3 = new S3Client(rgwClientConfig(rgw));
    },
    async tearDown() {
      s3?.destroy();
      await rgw?.stop();
    },
    async createStore(label: string) {
      if (rgw === undefined || s3 === undefined) throw new Error('awsBackend: setUp() first');
      const bucket = `e2e-${String(++count).padStart(2, '0')}-${label}`
        .toLowerCase()
        .replace(/[^a-z0-9-]/g, '-')
        .replace(/-+/g, '-')
        .slice(0, 63)
        .replace(/-$/, '');
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      return new RgwStore(rgw, s3, bucket);
    },
  };
}
