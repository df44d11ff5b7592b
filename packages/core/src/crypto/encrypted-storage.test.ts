import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import {
  ConfigurationError,
  IntegrityError,
  KeyError,
  ObjectNotFoundError,
  RangeNotSatisfiableError,
} from '../errors.js';
import type { EncryptionSettings } from '../config/settings.js';
import { ContentType, type ObjectKey } from '../storage/contract.js';
import { A1_OVERHEAD } from './a1-format.js';
import { createEncryptedStorage } from './encrypted-storage.js';
import { chunks } from './__tests__/helpers.js';
import { MemoryStorage } from './__tests__/memory-storage.js';

const key = (uuid: string): ObjectKey => ({ uuid, type: ContentType.Dicom });
const UUID = '8f0b3a4e-0c1d-4e2f-9a3b-5c6d7e8f9a0b';

describe('createEncryptedStorage, WriteFormat A1', () => {
  let dir: string;
  const keyPath = (id: number): string => join(dir, `key-${id}.b64`);
  const settings = (
    current: number,
    previous: number[] = [],
    maxConcurrentInputBytes = 1 << 30,
  ): EncryptionSettings => ({
    enabled: true,
    masterKey: { id: current, path: keyPath(current) },
    previousMasterKeys: previous.map((id) => ({ id, path: keyPath(id) })),
    maxConcurrentInputBytes,
    writeFormat: 'A1',
  });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'oos-encrypted-'));
    for (const id of [1, 2]) writeFileSync(keyPath(id), `${randomBytes(32).toString('base64')}\n`);
    writeFileSync(join(dir, 'short.b64'), `${randomBytes(16).toString('base64')}\n`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([0, 1, 86, 100_000])('round-trips a %i-byte object, storing it A1-encrypted', async (size) => {
    const inner = new MemoryStorage();
    const storage = await createEncryptedStorage(inner, settings(2));
    const plain = randomBytes(size);
    await storage.create(key(UUID), size, Readable.from(chunks(plain, 4096)));

    const stored = inner.objects.get(UUID)!;
    expect(stored.length).toBe(size + A1_OVERHEAD);
    expect(stored.subarray(0, 6).toString('hex')).toBe(`4131${'02000000'}`);
    if (size >= 16) expect(stored.includes(plain.subarray(0, 16))).toBe(false);

    const read = await storage.read(key(UUID));
    expect(read.size).toBe(size);
    expect((await buffer(read.body)).equals(plain)).toBe(true);
  });

  it('draws a fresh IV and data key for every object', async () => {
    const inner = new MemoryStorage();
    const storage = await createEncryptedStorage(inner, settings(2));
    const plain = Buffer.from('same plaintext');
    await storage.create(key('a'), plain.length, Readable.from([plain]));
    await storage.create(key('b'), plain.length, Readable.from([plain]));
    const [a, b] = [inner.objects.get('a')!, inner.objects.get('b')!];
    expect(a.subarray(6, 38).equals(b.subarray(6, 38))).toBe(false);
    expect(a.subarray(38, 70).equals(b.subarray(38, 70))).toBe(false);
    expect(a.subarray(70).equals(b.subarray(70))).toBe(false);
  });

  it('reads objects written under a previous master key', async () => {
    const inner = new MemoryStorage();
    const plain = randomBytes(5000);
    await (
      await createEncryptedStorage(inner, settings(1))
    ).create(key(UUID), plain.length, Readable.from([plain]));
    const rotated = await createEncryptedStorage(inner, settings(2, [1]));
    expect((await buffer((await rotated.read(key(UUID))).body)).equals(plain)).toBe(true);

    const withoutOldKey = await createEncryptedStorage(inner, settings(2));
    const { body } = await withoutOldKey.read(key(UUID));
    await expect(buffer(body)).rejects.toThrow(
      new KeyError(
        `object ${UUID} was encrypted with master key id 1, which is not configured (known ids: 2)`,
      ),
    );
  });

  it('serves ranges from the decrypted object', async () => {
    const inner = new MemoryStorage();
    const storage = await createEncryptedStorage(inner, settings(2));
    const plain = randomBytes(10_000);
    await storage.create(key(UUID), plain.length, Readable.from(chunks(plain, 3000)));
    for (const [offset, length] of [
      [0, 10],
      [2990, 20],
      [5000, 0],
      [9990, 10],
      [0, 10_000],
    ] as const) {
      const range = await buffer(await storage.readRange(key(UUID), offset, length));
      expect(range.equals(plain.subarray(offset, offset + length))).toBe(true);
    }
    await expect(storage.readRange(key(UUID), 9990, 11)).rejects.toThrow(RangeNotSatisfiableError);
    await expect(storage.readRange(key(UUID), -1, 1)).rejects.toThrow(RangeNotSatisfiableError);
    expect(storage.supportsVerifiedRangeReads).toBe(true);
  });

  it('fails a read and a range read of a tampered object at the end, naming the object', async () => {
    const inner = new MemoryStorage();
    const storage = await createEncryptedStorage(inner, settings(2));
    const plain = randomBytes(10_000);
    await storage.create(key(UUID), plain.length, Readable.from([plain]));
    const stored = inner.objects.get(UUID)!;
    stored[9000] = stored[9000]! ^ 0x01;

    const { body } = await storage.read(key(UUID));
    await expect(buffer(body)).rejects.toThrow(IntegrityError);
    const range = await storage.readRange(key(UUID), 0, 10);
    const received: Buffer[] = [];
    range.on('data', (part: Buffer) => received.push(part));
    await expect(
      new Promise((resolve, reject) => range.on('end', resolve).on('error', reject)),
    ).rejects.toThrow(`object ${UUID} failed A1 authentication`);
    // The range is held until the tag verifies: none of it came out.
    expect(received).toEqual([]);
  });

  it('refuses a stored object shorter than the A1 overhead, naming it', async () => {
    const inner = new MemoryStorage();
    inner.objects.set(UUID, Buffer.from('A1short'));
    const storage = await createEncryptedStorage(inner, settings(2));
    await expect(storage.read(key(UUID))).rejects.toThrow(
      new IntegrityError(
        `object ${UUID} is 7 bytes, shorter than the 86-byte A1 overhead: it is truncated or was not stored encrypted`,
      ),
    );
    await expect(storage.readRange(key(UUID), 0, 1)).rejects.toThrow(IntegrityError);
  });

  it('refuses a body that does not have the size given', async () => {
    const inner = new MemoryStorage();
    const storage = await createEncryptedStorage(inner, settings(2));
    await expect(storage.create(key(UUID), 10, Readable.from([Buffer.alloc(11)]))).rejects.toThrow(
      `object ${UUID}: the body yielded at least 11 bytes, but its size was given as 10 bytes`,
    );
    await expect(storage.create(key(UUID), 10, Readable.from([Buffer.alloc(9)]))).rejects.toThrow(
      `object ${UUID}: the body yielded 9 bytes, but its size was given as 10 bytes`,
    );
    expect(inner.objects.has(UUID)).toBe(false);
  });

  it('passes on a failing body as a failed create', async () => {
    const inner = new MemoryStorage();
    const storage = await createEncryptedStorage(inner, settings(2));
    const failing = new Readable({
      read() {
        this.destroy(new Error('upload interrupted'));
      },
    });
    await expect(storage.create(key(UUID), 10, failing)).rejects.toThrow('upload interrupted');
    expect(inner.objects.has(UUID)).toBe(false);
  });

  it('round-trips objects larger than MaxConcurrentInputSize, concurrently', async () => {
    const inner = new MemoryStorage();
    const storage = await createEncryptedStorage(inner, settings(2, [], 4096));
    const plains = Array.from({ length: 4 }, () => randomBytes(50_000));
    await Promise.all(
      plains.map((plain, i) =>
        storage.create(key(`obj-${i}`), plain.length, Readable.from(chunks(plain, 16_384))),
      ),
    );
    const read = await Promise.all(
      plains.map(async (_, i) => buffer((await storage.read(key(`obj-${i}`))).body)),
    );
    read.forEach((bytes, i) => expect(bytes.equals(plains[i]!)).toBe(true));
  });

  it('delegates remove and close', async () => {
    const inner = new MemoryStorage();
    const storage = await createEncryptedStorage(inner, settings(2));
    await storage.create(key(UUID), 1, Readable.from([Buffer.from('x')]));
    await storage.remove(key(UUID));
    await expect(storage.read(key(UUID))).rejects.toThrow(ObjectNotFoundError);
    await storage.close();
    expect(inner.closed).toBe(true);
  });

  it('fails at startup on a bad key file, naming it', async () => {
    const bad = { ...settings(2), masterKey: { id: 2, path: join(dir, 'short.b64') } };
    await expect(createEncryptedStorage(new MemoryStorage(), bad)).rejects.toThrow(
      new KeyError(
        `key file ${join(dir, 'short.b64')} decodes to 16 bytes; a master key must be exactly 32 bytes ` +
          '(create one with `openssl rand -base64 32` or `orthanc-object-storage keygen`)',
      ),
    );
    await expect(createEncryptedStorage(new MemoryStorage(), settings(2, [], 0))).rejects.toThrow(
      ConfigurationError,
    );
  });
});
