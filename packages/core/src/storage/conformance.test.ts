// The shared conformance suite (tooling/conformance, built) against core's own backends:
// FileSystemStorage, and BucketStorage over the in-memory bucket, both through createObjectStorage.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseProviderSettings } from '../config/parse.js';
import type { EncryptionSettings } from '../config/settings.js';
import { silentLogger } from '../logging.js';
import { createObjectStorage } from './compose.js';
import type { ObjectStorage } from './contract.js';
import { MemoryBucketClient } from './memory-bucket.js';

type Factory = (options: { encryption: EncryptionSettings | undefined }) => Promise<ObjectStorage>;
interface ConformanceModule {
  describeStorageConformance(name: string, factory: Factory): void;
  describeBucketListConformance(
    name: string,
    factory: () => Promise<MemoryBucketClient>,
    options: { listsMd5: boolean },
  ): void;
}

const conformancePath = fileURLToPath(
  new URL('../../../../tooling/conformance/dist/index.js', import.meta.url),
);
if (!existsSync(conformancePath)) {
  throw new Error(`${conformancePath} is missing: build it first (cd tooling/conformance && pnpm build)`);
}
const { describeStorageConformance, describeBucketListConformance } = (await import(
  conformancePath
)) as ConformanceModule;

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describeStorageConformance('FileSystemStorage', async ({ encryption }) => {
  const directory = await mkdtemp(join(tmpdir(), 'oos-fs-conformance-'));
  tempDirs.push(directory);
  const { settings } = parseProviderSettings('filesystem', {
    FileSystemObjectStorage: { Directory: directory },
  });
  return createObjectStorage({ ...settings!, encryption }, undefined, silentLogger);
});

describeStorageConformance('BucketStorage over MemoryBucketClient', async ({ encryption }) => {
  const { settings } = parseProviderSettings('google', {
    GoogleCloudStorage: { BucketName: 'b', RootPath: 'root/' },
  });
  return createObjectStorage({ ...settings!, encryption }, new MemoryBucketClient(), silentLogger);
});

describeBucketListConformance('MemoryBucketClient', async () => new MemoryBucketClient(), {
  listsMd5: false,
});
