import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseProviderSettings } from '../config/parse.js';
import type { GoogleCloudSettings } from '../config/settings.js';
import { ObjectNotFoundError, ObjectStorageError } from '../errors.js';
import type { Logger } from '../logging.js';
import { createObjectStorage } from './compose.js';
import { ContentType } from './contract.js';
import { FileSystemStorage } from './fs-storage.js';
import { MemoryBucketClient } from './memory-bucket.js';

const uuid = 'abcdef01-2345-4678-89ab-cdef01234567';
const key = { uuid, type: ContentType.Dicom };
const fsPath = (root: string, of = uuid) => join(root, of.slice(0, 2), of.slice(2, 4), of);

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
  };
}

let storageDirectory: string;
beforeEach(async () => {
  storageDirectory = await mkdtemp(join(tmpdir(), 'oos-hybrid-'));
});
afterEach(async () => {
  await rm(storageDirectory, { recursive: true, force: true });
});

function settingsFor(hybridMode: string): GoogleCloudSettings {
  return parseProviderSettings('google', {
    StorageDirectory: storageDirectory,
    GoogleCloudStorage: { BucketName: 'b', HybridMode: hybridMode },
  }).settings!;
}

describe('HybridMode WriteToFileSystem', () => {
  it('writes to the file system, reads it first then the object storage, removes from both', async () => {
    const client = new MemoryBucketClient();
    const log = recordingLogger();
    const storage = await createObjectStorage(settingsFor('WriteToFileSystem'), client, log);
    await storage.create(key, 3, Readable.from([Buffer.from('new')]));
    expect(await readFile(fsPath(storageDirectory), 'utf8')).toBe('new');
    expect(client.objects.size).toBe(0);
    expect(await text((await storage.read(key)).body)).toBe('new');

    const old = { uuid: 'abcdef01-0000-4000-8000-000000000000', type: ContentType.Dicom };
    client.objects.set(`${old.uuid}.dcm`, Buffer.from('in the bucket'));
    expect(await text((await storage.read(old)).body)).toBe('in the bucket');
    expect(await text(await storage.readRange(old, 7, 6))).toBe('bucket');

    await storage.remove(key);
    await storage.remove(old);
    expect(client.objects.size).toBe(0);
    await expect(storage.read(key)).rejects.toThrow(
      new RegExp(`object not found: ${key.uuid} in file system .* nor in object storage`),
    );
    expect(log.lines.join('\n')).toMatch(
      /info GoogleCloudStorage: storage stack: memory:\/\/test-bucket .* \+ no encryption \+ hybrid WriteToFileSystem/,
    );
    // A file found on the second storage is hybrid mode at work: info, never a warning.
    expect(log.lines.filter((line) => line.startsWith('info read ') && line.includes(old.uuid))).toHaveLength(
      2,
    );
    expect(log.lines.filter((line) => !line.startsWith('info '))).toEqual([]);
  });
});

describe('HybridMode WriteToObjectStorage', () => {
  it('writes to the object storage, reads it first then the file system', async () => {
    const client = new MemoryBucketClient();
    const storage = await createObjectStorage(settingsFor('WriteToObjectStorage'), client, recordingLogger());
    await storage.create(key, 3, Readable.from([Buffer.from('new')]));
    expect(client.objects.get(`${uuid}.dcm`)?.toString()).toBe('new');

    const legacy = { uuid: 'abcdef01-1111-4000-8000-000000000000', type: ContentType.DicomAsJson };
    await new FileSystemStorage({ root: storageDirectory, sync: false }).create(
      legacy,
      10,
      Readable.from([Buffer.from('on disk...')]),
    );
    expect(await text((await storage.read(legacy)).body)).toBe('on disk...');
    await storage.remove(legacy);
    await expect(storage.read(legacy)).rejects.toThrow(ObjectNotFoundError);
  });

  it('reports the primary error, not "not found", when the primary fails otherwise', async () => {
    const client = new MemoryBucketClient();
    client.get = async () => {
      throw new ObjectStorageError('bucket unreachable');
    };
    const log = recordingLogger();
    const storage = await createObjectStorage(settingsFor('WriteToObjectStorage'), client, log);
    await expect(storage.read(key)).rejects.toThrow('bucket unreachable');
    expect(log.lines.join('\n')).toMatch(
      /warn object storage: reading .* failed \(bucket unreachable\); trying file system/,
    );
  });

  it('attempts both removes and reports a failure', async () => {
    const client = new MemoryBucketClient();
    client.delete = async () => {
      throw new ObjectStorageError('denied');
    };
    const storage = await createObjectStorage(settingsFor('WriteToObjectStorage'), client, recordingLogger());
    await new FileSystemStorage({ root: storageDirectory, sync: false }).create(
      key,
      1,
      Readable.from([Buffer.from('x')]),
    );
    await expect(storage.remove(key)).rejects.toThrow(/removing .* failed: object storage: denied/);
    await expect(readFile(fsPath(storageDirectory))).rejects.toThrow(/ENOENT/);
  });
});

describe('HybridMode with StorageEncryption', () => {
  it('encrypts both sides, as the C++ plugins do, so their hybrid files stay readable', async () => {
    const keyFile = join(storageDirectory, 'master.b64');
    await writeFile(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    const settings = parseProviderSettings('google', {
      StorageDirectory: storageDirectory,
      GoogleCloudStorage: {
        BucketName: 'b',
        HybridMode: 'WriteToFileSystem',
        StorageEncryption: { MasterKey: [7, keyFile] },
      },
    }).settings!;
    const client = new MemoryBucketClient();
    const storage = await createObjectStorage(settings, client, recordingLogger());

    await storage.create(key, 3, Readable.from([Buffer.from('new')]));
    const onDisk = await readFile(fsPath(storageDirectory));
    expect(onDisk.subarray(0, 2).toString()).toBe('C1');
    expect(onDisk.length).toBe(3 + 121);
    expect(await text((await storage.read(key)).body)).toBe('new');

    // An object the bucket side holds (encrypted, with the .enc name) is read through the fallback.
    const other = { uuid: 'abcdef01-3333-4000-8000-000000000000', type: ContentType.Dicom };
    const writeToBucket = await createObjectStorage(
      { ...settings, hybridMode: 'Disabled' },
      client,
      recordingLogger(),
    );
    await writeToBucket.create(other, 6, Readable.from([Buffer.from('bucket')]));
    expect([...client.objects.keys()]).toEqual([`${other.uuid}.dcm.enc`]);
    expect(await text((await storage.read(other)).body)).toBe('bucket');

    // With WriteFormat A1 the files are what the C++ plugins write, and C1 files still read.
    const a1Settings = { ...settings, encryption: { ...settings.encryption!, writeFormat: 'A1' as const } };
    const a1 = await createObjectStorage(a1Settings, client, recordingLogger());
    const third = { uuid: 'abcdef01-4444-4000-8000-000000000000', type: ContentType.Dicom };
    await a1.create(third, 2, Readable.from([Buffer.from('a1')]));
    expect((await readFile(fsPath(storageDirectory, third.uuid))).subarray(0, 2).toString()).toBe('A1');
    expect(await text((await a1.read(key)).body)).toBe('new');
  });
});
