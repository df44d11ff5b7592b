import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ObjectNotFoundError, RangeNotSatisfiableError } from '../errors.js';
import { ContentType } from './contract.js';
import { FileSystemStorage } from './fs-storage.js';
import { releaseChunk } from './reusable-buffers.js';

const uuid = '1a2b3c4d-0000-4000-8000-00000000abcd';
const key = { uuid, type: ContentType.Dicom };

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

let root: string;
let storage: FileSystemStorage;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'oos-fs-'));
  storage = new FileSystemStorage({ root, sync: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('FileSystemStorage', () => {
  it("writes Orthanc's layout <root>/<c1c2>/<c3c4>/<uuid>, whatever the content type, and leaves no temp file", async () => {
    await storage.create(
      { uuid, type: ContentType.DicomUntilPixelData },
      5,
      Readable.from([Buffer.from('hello')]),
    );
    expect(await readFile(join(root, '1a', '2b', uuid), 'utf8')).toBe('hello');
    expect(await readdir(join(root, '1a', '2b'))).toEqual([uuid]);
    expect(await text((await storage.read(key)).body)).toBe('hello');
  });

  it('reads files Orthanc itself wrote', async () => {
    await mkdir(join(root, '1a', '2b'), { recursive: true });
    await writeFile(join(root, '1a', '2b', uuid), 'written by Orthanc');
    const { size, body } = await storage.read(key);
    expect(size).toBe(18);
    expect(await text(body)).toBe('written by Orthanc');
    expect(await text(await storage.readRange(key, 11, 7))).toBe('Orthanc');
  });

  it('refuses a wrong-size body and leaves nothing behind (no file, no temp file)', async () => {
    await expect(storage.create(key, 6, Readable.from([Buffer.from('hello')]))).rejects.toThrow(
      /5 bytes instead of the expected 6/,
    );
    await expect(storage.create(key, 4, Readable.from([Buffer.from('hello')]))).rejects.toThrow(
      /more than the expected 4 bytes/,
    );
    expect(await readdir(join(root, '1a', '2b'))).toEqual([]);
    await expect(storage.read(key)).rejects.toThrow(ObjectNotFoundError);
  });

  it('keeps the previous content when a rewrite fails (atomic rename)', async () => {
    await storage.create(key, 3, Readable.from([Buffer.from('old')]));
    await expect(storage.create(key, 10, Readable.from([Buffer.from('new')]))).rejects.toThrow();
    expect(await text((await storage.read(key)).body)).toBe('old');
  });

  it('bounds-checks range reads', async () => {
    await storage.create(key, 5, Readable.from([Buffer.from('hello')]));
    expect(await text(await storage.readRange(key, 1, 3))).toBe('ell');
    expect(await text(await storage.readRange(key, 5, 0))).toBe('');
    await expect(storage.readRange(key, 3, 3)).rejects.toThrow(RangeNotSatisfiableError);
    await expect(storage.readRange(key, 3, 3)).rejects.toThrow(/past the end of .* \(5 bytes\)/);
    await expect(storage.readRange(key, -1, 1)).rejects.toThrow(/invalid range/);
  });

  it('removes idempotently and drops the now-empty parent directories, keeping non-empty ones', async () => {
    const sibling = { uuid: '1a2bffff-0000-4000-8000-00000000abcd', type: ContentType.Dicom };
    await storage.create(key, 1, Readable.from([Buffer.from('a')]));
    await storage.create(sibling, 1, Readable.from([Buffer.from('b')]));
    await storage.remove(key);
    expect(await readdir(join(root, '1a', '2b'))).toEqual([sibling.uuid]);
    await storage.remove(sibling);
    await storage.remove(sibling);
    expect(await readdir(root)).toEqual([]);
    expect((await stat(root)).isDirectory()).toBe(true);
  });

  it('refuses crafted uuids before touching the disk', async () => {
    const evil = { uuid: '../../../../../../tmp/evil', type: ContentType.Dicom };
    await expect(storage.create(evil, 1, Readable.from([Buffer.from('x')]))).rejects.toThrow(
      /invalid attachment uuid/,
    );
    await expect(storage.read(evil)).rejects.toThrow(/invalid attachment uuid/);
    await expect(storage.remove(evil)).rejects.toThrow(/invalid attachment uuid/);
  });

  it('reports a not-found error naming the path', async () => {
    await expect(storage.read(key)).rejects.toThrow(
      new RegExp(`object not found: .*1a/2b/${uuid} in file system`),
    );
  });

  it('reads in 1 MiB chunks, reusing one only after its consumer gave it back', async () => {
    const data = randomBytes(2.5 * 1024 * 1024);
    await storage.create(key, data.length, Readable.from([data]));
    const first = await storage.read(key);
    const chunks: Buffer[] = [];
    for await (const chunk of first.body) chunks.push(chunk as Buffer);
    expect(chunks.map((c) => c.length)).toEqual([1 << 20, 1 << 20, 0.5 * (1 << 20)]);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    // Kept by its consumer: a second read must not write into these chunks.
    const second = await storage.read(key);
    const memories: ArrayBufferLike[] = [];
    for await (const chunk of second.body) {
      memories.push((chunk as Buffer).buffer);
      releaseChunk(second.body, chunk as Buffer);
    }
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(memories.some((m) => chunks.some((c) => c.buffer === m))).toBe(false);
    // Given back: the next chunk reuses the memory.
    expect(new Set(memories).size).toBeLessThan(memories.length);
    expect(await text(await storage.readRange(key, 10, 5))).toBe(data.subarray(10, 15).toString());
  });

  it('reports a file cut short as an integrity error', async () => {
    await storage.create(key, 5, Readable.from([Buffer.from('hello')]));
    const { body } = await storage.read(key);
    await writeFile(join(root, '1a', '2b', uuid), 'he');
    await expect(text(body)).rejects.toThrow(/the file ended 3 bytes early/);
  });
});
