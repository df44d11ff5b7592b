import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseProviderSettings } from '../config/parse.js';
import type { Logger } from '../logging.js';
import { createObjectStorage } from './compose.js';
import { ContentType } from './contract.js';
import { MemoryBucketClient } from './memory-bucket.js';

const uuid = '01234567-89ab-4cde-8f01-23456789abcd';

function logger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oos-compose-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('createObjectStorage', () => {
  it('stacks naming + encryption over the bucket and logs the stack without secrets', async () => {
    const keyPath = join(dir, 'k.b64');
    await writeFile(keyPath, `${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
    const { settings } = parseProviderSettings('aws', {
      AwsS3Storage: {
        BucketName: 'b',
        Region: 'r',
        AccessKey: 'AKIDSECRET',
        SecretKey: 'SECRETVALUE',
        RootPath: 'base',
        StorageEncryption: { MasterKey: [9, keyPath] },
      },
    });
    const client = new MemoryBucketClient();
    const log = logger();
    const storage = await createObjectStorage(settings!, client, log);
    await storage.create({ uuid, type: ContentType.DicomAsJson }, 5, Readable.from([Buffer.from('plain')]));
    const stored = client.objects.get(`base/${uuid}.json.enc`);
    expect(stored?.length).toBe(5 + 121);
    expect(stored?.subarray(0, 2).toString()).toBe('C1');
    expect(stored?.includes(Buffer.from('plain'))).toBe(false);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatch(
      /AwsS3Storage: storage stack: memory:\/\/test-bucket \(root path "base", flat names\) \+ encryption writing C1, reading C1 and A1 \(master key id 9\)/,
    );
    expect(log.lines[0]).not.toMatch(/SECRET/);
  });

  it('uses FileSystemStorage for the filesystem provider', async () => {
    const { settings } = parseProviderSettings('filesystem', { FileSystemObjectStorage: { Directory: dir } });
    const log = logger();
    const storage = await createObjectStorage(settings!, undefined, log);
    await storage.create({ uuid, type: ContentType.Dicom }, 1, Readable.from([Buffer.from('x')]));
    expect(log.lines[0]).toContain(`file system ${dir} (Orthanc layout) + no encryption`);
    await storage.remove({ uuid, type: ContentType.Dicom });
  });

  it('refuses a cloud provider without a client', async () => {
    const { settings } = parseProviderSettings('google', { GoogleCloudStorage: { BucketName: 'b' } });
    await expect(createObjectStorage(settings!, undefined, logger())).rejects.toThrow(/no bucket client/);
  });
});
