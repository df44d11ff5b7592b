import { rgwClientConfig, startRadosgw, type Radosgw } from '@orthanc-object-storage/servers';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { MasterKeyFile } from '../backends/backend.js';
import { artifactDir, nodeExecutable } from '../harness/repo.js';

/** Where the demo's Orthanc keeps its files, and how to stop that backend. */
export interface DemoBackend {
  /** One line for the console: what stores the objects. */
  readonly summary: string;
  /** Where the objects are. */
  readonly objectsAt: string;
  readonly artifactPath: string;
  readonly configuration: Record<string, unknown>;
  stop(): Promise<void>;
}

const BUCKET = 'orthanc-demo';

function encryption(key: MasterKeyFile): Record<string, unknown> {
  return { StorageEncryption: { Enable: true, MasterKey: [key.id, key.path] } };
}

/** The AWS plugin against a local Ceph RGW, when both are available; undefined otherwise (with the reason). */
async function startAwsBackend(
  key: MasterKeyFile,
  say: (line: string) => void,
): Promise<DemoBackend | undefined> {
  const artifactPath = path.join(artifactDir('aws'), 'libOrthancAwsS3Storage.so');
  if (!existsSync(artifactPath)) {
    say(`demo: the AWS plugin is not built (${artifactPath} missing)`);
    return undefined;
  }
  let rgw: Radosgw;
  try {
    say('demo: starting a local S3 server (Ceph RGW on 127.0.0.1)...');
    rgw = await startRadosgw({});
  } catch (error) {
    say(`demo: could not start Ceph RGW: ${(error as Error).message}`);
    return undefined;
  }
  try {
    const s3 = new S3Client(rgwClientConfig(rgw));
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    s3.destroy();
  } catch (error) {
    await rgw.stop();
    throw error;
  }
  return {
    summary: 'the AWS S3 plugin, C1 client-side encryption, a local Ceph RGW S3 server',
    objectsAt: `bucket "${BUCKET}" at ${rgw.endpoint} (path-style; objects named <uuid>.dcm.enc, ..., C1-encrypted, one per instance; the RGW keeps them in memory)`,
    artifactPath,
    configuration: {
      AwsS3Storage: {
        NodeExecutable: nodeExecutable(),
        BucketName: BUCKET,
        Region: rgw.region,
        Endpoint: rgw.endpoint,
        VirtualAddressing: false,
        AccessKey: rgw.accessKey,
        SecretKey: rgw.secretKey,
        ...encryption(key),
      },
    },
    stop: () => rgw.stop(),
  };
}

/** Core's file-system backend behind the same bridge: the fallback until the AWS plugin lands. */
async function startFileSystemBackend(workDir: string, key: MasterKeyFile): Promise<DemoBackend> {
  const artifactPath = path.join(artifactDir('core'), 'libOrthancFileSystemObjectStorage.so');
  if (!existsSync(artifactPath)) {
    throw new Error(
      `no plugin artifact is built (${artifactPath} missing): run \`pnpm build\` at the repository root`,
    );
  }
  const directory = path.join(workDir, 'objects');
  await mkdir(directory, { recursive: true });
  return {
    summary: "core's file-system backend through the plugin bridge, C1 client-side encryption",
    objectsAt: `${directory} (Orthanc's <2>/<2>/<uuid> layout, each object C1-encrypted)`,
    artifactPath,
    configuration: {
      FileSystemObjectStorage: { NodeExecutable: nodeExecutable(), Directory: directory, ...encryption(key) },
    },
    stop: async () => {},
  };
}

export async function startDemoBackend(
  workDir: string,
  key: MasterKeyFile,
  say: (line: string) => void,
): Promise<DemoBackend> {
  const aws = await startAwsBackend(key, say);
  if (aws !== undefined) return aws;
  say("demo: falling back to core's file-system backend (same bridge and encryption, no S3 server)");
  return startFileSystemBackend(workDir, key);
}
