// What the AWS fault, crash and damaged-object suites share: a throw-away Ceph RGW with one
// bucket, a master key file, and the plugin's section with encryption on.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { rgwClientConfig, startRadosgw, type Radosgw } from '@orthanc-object-storage/servers';
import { artifactDir, nodeExecutable } from './repo.js';
import { writeMasterKey } from '../backends/backend.js';

export const AWS_PLUGIN = path.join(artifactDir('aws'), 'libOrthancAwsS3Storage.so');

export interface EncryptedRgw {
  readonly workDir: string;
  readonly rgw: Radosgw;
  readonly s3: S3Client;
  readonly bucket: string;
  /** The `AwsS3Storage` section (master key 1, the dev tree's plugin and Node), with `overrides` on top. */
  section(overrides?: Record<string, unknown>, encryption?: Record<string, unknown>): Record<string, unknown>;
  stop(): Promise<void>;
}

export async function startEncryptedRgw(bucket: string): Promise<EncryptedRgw> {
  const workDir = mkdtempSync(path.join(os.tmpdir(), `oos-${bucket}-aws-`));
  const rgw = await startRadosgw({ workDir: path.join(workDir, 'radosgw') });
  const s3 = new S3Client(rgwClientConfig(rgw));
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const keyPath = writeMasterKey(workDir, 1).path;
  return {
    workDir,
    rgw,
    s3,
    bucket,
    section: (overrides = {}, encryption = {}) => ({
      BucketName: bucket,
      Region: rgw.region,
      Endpoint: rgw.endpoint,
      VirtualAddressing: false,
      AccessKey: rgw.accessKey,
      SecretKey: rgw.secretKey,
      NodeExecutable: nodeExecutable(),
      ...overrides,
      StorageEncryption: { Enable: true, MasterKey: [1, keyPath], ...encryption },
    }),
    async stop() {
      s3.destroy();
      await rgw.stop();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}
