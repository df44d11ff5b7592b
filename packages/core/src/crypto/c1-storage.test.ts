import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { IntegrityError, KeyError, RangeNotSatisfiableError } from '../errors.js';
import type { EncryptionSettings, WriteFormat } from '../config/settings.js';
import { ContentType, type ObjectKey } from '../storage/contract.js';
import { C1_CHUNK_SIZE, C1_HEADER_SIZE, C1_TAG_SIZE, c1ObjectSize, decodeC1Header } from './c1-format.js';
import { createEncryptedStorage, type EncryptedStorage } from './encrypted-storage.js';
import { chunks } from './__tests__/helpers.js';
import { MemoryStorage } from './__tests__/memory-storage.js';

const UUID = '8f0b3a4e-0c1d-4e2f-9a3b-5c6d7e8f9a0b';
const OTHER = '11111111-2222-4333-8444-555555555555';
const dicom = (uuid: string): ObjectKey => ({ uuid, type: ContentType.Dicom });
const RECORD = C1_CHUNK_SIZE + C1_TAG_SIZE;

/** Collect a stream; on failure return the error and how many bytes came out before it. */
async function drain(stream: Readable): Promise<{ bytes: Buffer; error?: Error }> {
  const parts: Buffer[] = [];
  try {
    for await (const part of stream as AsyncIterable<Buffer>) parts.push(part);
    return { bytes: Buffer.concat(parts) };
  } catch (error) {
    return { bytes: Buffer.concat(parts), error: error as Error };
  }
}

describe('C1 through the encrypted storage', () => {
  let dir: string;
  const keyPath = (name: string): string => join(dir, `${name}.b64`);
  const settings = (
    current: [number, string],
    options: { previous?: [number, string][]; limit?: number; format?: WriteFormat } = {},
  ): EncryptionSettings => ({
    enabled: true,
    masterKey: { id: current[0], path: keyPath(current[1]) },
    previousMasterKeys: (options.previous ?? []).map(([id, name]) => ({ id, path: keyPath(name) })),
    maxConcurrentInputBytes: options.limit ?? 1 << 30,
    ...(options.format !== undefined && { writeFormat: options.format }),
  });
  const open = (inner: MemoryStorage, s = settings([2, 'k2'])): Promise<EncryptedStorage> =>
    createEncryptedStorage(inner, s);

  async function stored(size: number, key = dicom(UUID)) {
    const inner = new MemoryStorage();
    const storage = await open(inner);
    const plain = randomBytes(size);
    await storage.create(key, size, Readable.from(chunks(plain, 10_000)));
    return { inner, storage, plain, object: inner.objects.get(key.uuid)! };
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'oos-c1-'));
    for (const name of ['k1', 'k2', 'k2-other']) {
      writeFileSync(keyPath(name), `${randomBytes(32).toString('base64')}\n`);
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([0, 1, 65_535, 65_536, 65_537, 300_000])(
    'writes C1 by default and round-trips a %i-byte object',
    async (size) => {
      const { storage, plain, object } = await stored(size, { uuid: UUID, type: ContentType.DicomAsJson });
      expect(object.length).toBe(c1ObjectSize(size, C1_CHUNK_SIZE));
      expect(object.length).toBe(C1_HEADER_SIZE + size + C1_TAG_SIZE * Math.max(1, Math.ceil(size / 65_536)));
      const header = decodeC1Header(object, 'test');
      expect(header).toMatchObject({
        keyId: 2,
        chunkSize: 65_536,
        plaintextSize: size,
        contentType: ContentType.DicomAsJson,
        uuid: UUID,
      });
      if (size >= 16) expect(object.includes(plain.subarray(0, 16))).toBe(false);
      const read = await storage.read({ uuid: UUID, type: ContentType.DicomAsJson });
      expect(read.size).toBe(size);
      expect((await buffer(read.body)).equals(plain)).toBe(true);
    },
  );

  it('an empty plaintext is a 121-byte object', async () => {
    expect((await stored(0)).object.length).toBe(121);
  });

  it('draws a fresh nonce prefix and data key for every object', async () => {
    const inner = new MemoryStorage();
    const storage = await open(inner);
    const plain = Buffer.from('same plaintext');
    for (const uuid of [UUID, OTHER]) await storage.create(dicom(uuid), plain.length, Readable.from([plain]));
    const [a, b] = [
      decodeC1Header(inner.objects.get(UUID)!, 'a'),
      decodeC1Header(inner.objects.get(OTHER)!, 'b'),
    ];
    expect(a.noncePrefix.equals(b.noncePrefix)).toBe(false);
    expect(a.wrappedKey.equals(b.wrappedKey)).toBe(false);
  });

  it('serves every range from the header and only the covering chunks, in at most two range requests', async () => {
    const size = 5 * C1_CHUNK_SIZE + 123;
    const { inner, storage, plain } = await stored(size);
    let first = true;
    for (const [offset, length] of [
      [0, 1],
      [0, 0],
      [65_535, 2],
      [65_536, 65_536],
      [100_000, 4096],
      [3 * C1_CHUNK_SIZE - 10, C1_CHUNK_SIZE + 20],
      [size - 1, 1],
      [size, 0],
      [0, size],
    ] as const) {
      inner.rangeRequests.length = 0;
      const range = await buffer(await storage.readRange(dicom(UUID), offset, length));
      expect(range.equals(plain.subarray(offset, offset + length))).toBe(true);
      // The first read fetches the header; later ones reuse it (it authenticated a chunk).
      const chunkRequest = inner.rangeRequests[first ? 1 : 0]!;
      expect(inner.rangeRequests.length).toBe(first ? 2 : 1);
      if (first) expect(inner.rangeRequests[0]).toEqual({ offset: 0, length: C1_HEADER_SIZE });
      const covering =
        length === 0 ? 1 : Math.floor((offset + length - 1) / 65_536) - Math.floor(offset / 65_536) + 1;
      expect(chunkRequest.length).toBeLessThanOrEqual(covering * RECORD);
      expect(chunkRequest.offset).toBe(C1_HEADER_SIZE + Math.min(Math.floor(offset / 65_536), 5) * RECORD);
      first = false;
    }
    await expect(storage.readRange(dicom(UUID), size - 10, 11)).rejects.toThrow(RangeNotSatisfiableError);
    expect(storage.supportsVerifiedRangeReads).toBe(true);

    // Removing forgets the header; an object replaced behind the cache's back still fails its tags.
    await storage.remove(dicom(UUID));
    await storage.create(dicom(UUID), 70_000, Readable.from([randomBytes(70_000)]));
    inner.rangeRequests.length = 0;
    await buffer(await storage.readRange(dicom(UUID), 10, 10));
    expect(inner.rangeRequests.length).toBe(2);
    const replacement = await stored(70_000);
    inner.objects.set(UUID, replacement.object);
    const replaced = await drain(await storage.readRange(dicom(UUID), 10, 10));
    expect(replaced.error!.message).toMatch('chunk 0 of 2 fails C1 authentication');
    expect(replaced.bytes.length).toBe(0);
  });

  describe('tampered objects are refused, naming the object, and no unverified byte comes out', () => {
    const size = 4 * C1_CHUNK_SIZE + 500;

    it('a flipped ciphertext byte: the chunk fails its tag; earlier chunks were verified', async () => {
      const { inner, storage, plain, object } = await stored(size);
      object[C1_HEADER_SIZE + 2 * RECORD + 77]! ^= 0x40;
      const whole = await drain((await storage.read(dicom(UUID))).body);
      expect(whole.error).toBeInstanceOf(IntegrityError);
      expect(whole.error!.message).toMatch(`object ${UUID}: chunk 2 of 5 fails C1 authentication`);
      expect(whole.bytes.length).toBe(2 * C1_CHUNK_SIZE);
      expect(whole.bytes.equals(plain.subarray(0, 2 * C1_CHUNK_SIZE))).toBe(true);
      const bad = await drain(await storage.readRange(dicom(UUID), 2 * C1_CHUNK_SIZE + 5, 10));
      expect(bad.error).toBeInstanceOf(IntegrityError);
      expect(bad.bytes.length).toBe(0);
      // STREAM: a range that does not touch the damaged chunk is still authentic.
      const good = await buffer(await storage.readRange(dicom(UUID), 10, 100));
      expect(good.equals(plain.subarray(10, 110))).toBe(true);
      expect(inner.objects.size).toBe(1);
    });

    it('a flipped header byte (in the uuid): every chunk fails, not a misleading binding error', async () => {
      const { storage, object } = await stored(size);
      object[70]! ^= 0x01;
      const whole = await drain((await storage.read(dicom(UUID))).body);
      expect(whole.error!.message).toMatch('chunk 0 of 5 fails C1 authentication');
      expect(whole.bytes.length).toBe(0);
    });

    it('a truncation: refused before any byte, by the size check or as a missing final chunk', async () => {
      const { inner, storage, object } = await stored(size);
      inner.objects.set(UUID, object.subarray(0, object.length - (500 + C1_TAG_SIZE)));
      await expect(storage.read(dicom(UUID))).rejects.toThrow(
        new RegExp(`object ${UUID} is \\d+ bytes, but its C1 header .* implies \\d+: it is truncated`),
      );
      await expect(storage.readRange(dicom(UUID), size - 10, 10)).rejects.toThrow(/it is truncated/);
      inner.objects.set(UUID, object.subarray(0, 50));
      await expect(storage.read(dicom(UUID))).rejects.toThrow('shorter than the 105-byte C1 header');
      inner.objects.set(UUID, Buffer.concat([object, Buffer.alloc(1)]));
      await expect(storage.read(dicom(UUID))).rejects.toThrow('it has extra bytes');
    });

    it('a final chunk cut short while streaming: the stream fails as truncated', async () => {
      const { inner, storage, object } = await stored(size);
      // The backend claims the full size but ends early (a broken download).
      inner.read = async () => ({
        size: object.length,
        body: Readable.from(chunks(object.subarray(0, object.length - 20), 4096)),
      });
      const whole = await drain((await storage.read(dicom(UUID))).body);
      expect(whole.error!.message).toMatch(`object ${UUID} is truncated: it ends inside chunk 4 of 5`);
      expect(whole.bytes.length).toBe(4 * C1_CHUNK_SIZE);
    });

    it('swapped chunks fail their tags', async () => {
      const { storage, object } = await stored(size);
      const one = Buffer.from(object.subarray(C1_HEADER_SIZE, C1_HEADER_SIZE + RECORD));
      object.copy(object, C1_HEADER_SIZE, C1_HEADER_SIZE + RECORD, C1_HEADER_SIZE + 2 * RECORD);
      one.copy(object, C1_HEADER_SIZE + RECORD);
      const whole = await drain((await storage.read(dicom(UUID))).body);
      expect(whole.error!.message).toMatch('chunk 0 of 5 fails C1 authentication');
      const range = await drain(await storage.readRange(dicom(UUID), C1_CHUNK_SIZE, 10));
      expect(range.error!.message).toMatch('chunk 1 of 5 fails C1 authentication');
    });

    it("an object copied over another attachment's name: refused, saying which attachment it holds", async () => {
      const { inner, storage, object } = await stored(size);
      inner.objects.set(OTHER, Buffer.from(object));
      const expected =
        `object ${OTHER} holds attachment ${UUID} (content type 1, DICOM), not the requested ` +
        `attachment ${OTHER} (content type 1, DICOM): it was stored or copied under another attachment's name`;
      const whole = await drain((await storage.read(dicom(OTHER))).body);
      expect(whole.error).toBeInstanceOf(IntegrityError);
      expect(whole.error!.message).toContain(expected);
      expect(whole.bytes.length).toBe(0);
      const range = await drain(await storage.readRange(dicom(OTHER), 100, 10));
      expect(range.error!.message).toContain(expected);
      expect(range.bytes.length).toBe(0);
      // Same uuid, other content type (e.g. the DICOM file served as its JSON).
      const asJson = await drain((await storage.read({ uuid: UUID, type: ContentType.DicomAsJson })).body);
      expect(asJson.error!.message).toContain('not the requested attachment');
      expect(asJson.bytes.length).toBe(0);
    });

    it('a data key that does not unwrap (another key under the same id) is refused', async () => {
      const { inner } = await stored(size);
      const wrongKey = await open(inner, settings([2, 'k2-other']));
      await expect(wrongKey.read(dicom(UUID))).rejects.toThrow(
        `object ${UUID}: its data key does not unwrap under master key id 2`,
      );
      await expect(wrongKey.readRange(dicom(UUID), 0, 1)).rejects.toThrow(IntegrityError);
      const unknownKey = await open(inner, settings([1, 'k1']));
      await expect(unknownKey.read(dicom(UUID))).rejects.toThrow(
        new KeyError(
          `object ${UUID} was encrypted with master key id 2, which is not configured (known ids: 1)`,
        ),
      );
    });

    it('a plain (unencrypted) object is refused', async () => {
      const inner = new MemoryStorage();
      inner.objects.set(UUID, Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), randomBytes(500)]));
      const storage = await open(inner);
      await expect(storage.read(dicom(UUID))).rejects.toThrow(
        `object ${UUID} is not encrypted by these plugins: its version bytes are 0x0000, expected 'C1' or 'A1'`,
      );
      await expect(storage.readRange(dicom(UUID), 0, 1)).rejects.toThrow('is not encrypted by these plugins');
    });
  });

  it('reads A1 objects written before the switch to C1, and ranges of them', async () => {
    const inner = new MemoryStorage();
    const a1 = await open(inner, settings([1, 'k1'], { format: 'A1' }));
    const big = randomBytes(200_000);
    const tiny = Buffer.from('tiny');
    await a1.create(dicom(UUID), big.length, Readable.from([big]));
    await a1.create(dicom(OTHER), tiny.length, Readable.from([tiny]));
    expect(inner.objects.get(UUID)!.subarray(0, 2).toString()).toBe('A1');

    const c1 = await open(inner, settings([2, 'k2'], { previous: [[1, 'k1']] }));
    expect(c1.writeFormat).toBe('C1');
    expect((await buffer((await c1.read(dicom(UUID))).body)).equals(big)).toBe(true);
    expect(
      (await buffer(await c1.readRange(dicom(UUID), 70_000, 5000))).equals(big.subarray(70_000, 75_000)),
    ).toBe(true);
    // 90 bytes in all: shorter than a C1 header, still read as A1.
    expect((await buffer(await c1.readRange(dicom(OTHER), 1, 2))).toString()).toBe('in');
    expect((await buffer((await c1.read(dicom(OTHER))).body)).toString()).toBe('tiny');

    await c1.create(dicom(OTHER), tiny.length, Readable.from([tiny]));
    expect(inner.objects.get(OTHER)!.subarray(0, 2).toString()).toBe('C1');
  });

  it('refuses to write C1 for a uuid that is not 36 characters, naming it', async () => {
    const storage = await open(new MemoryStorage());
    await expect(storage.create(dicom('short'), 1, Readable.from([Buffer.from('x')]))).rejects.toThrow(
      'object short: cannot write it in C1: C1 binds objects to 36-character attachment uuids',
    );
  });

  it('MaxConcurrentInputSize bounds the chunk bytes held across concurrent calls, with no deadlock', async () => {
    const inner = new MemoryStorage();
    // Room for three chunk reservations (each holds a chunk and its output); objects are 10x larger.
    const limit = 3 * 2 * RECORD;
    const storage = await open(inner, settings([2, 'k2'], { limit }));
    const uuids = Array.from(
      { length: 12 },
      (_, i) => `${String(i).padStart(8, '0')}-0c1d-4e2f-9a3b-5c6d7e8f9a0b`,
    );
    const plains = uuids.map(() => randomBytes(10 * C1_CHUNK_SIZE + 999));
    await Promise.all(
      uuids.map((uuid, i) =>
        storage.create(dicom(uuid), plains[i]!.length, Readable.from(chunks(plains[i]!, 7000))),
      ),
    );
    expect(storage.budget.peakInUse).toBeLessThanOrEqual(limit);
    expect(storage.budget.peakInUse).toBeGreaterThan(limit / 2);
    expect(storage.budget.waitCount).toBeGreaterThan(0);
    const waitsAfterWrites = storage.budget.waitCount;

    const [wholes, ranges] = await Promise.all([
      Promise.all(uuids.map(async (uuid) => buffer((await storage.read(dicom(uuid))).body))),
      Promise.all(uuids.map(async (uuid) => buffer(await storage.readRange(dicom(uuid), 60_000, 300_000)))),
    ]);
    wholes.forEach((bytes, i) => expect(bytes.equals(plains[i]!)).toBe(true));
    ranges.forEach((bytes, i) => expect(bytes.equals(plains[i]!.subarray(60_000, 360_000))).toBe(true));
    expect(storage.budget.waitCount).toBeGreaterThan(waitsAfterWrites);
    expect(storage.budget.peakInUse).toBeLessThanOrEqual(limit);
    expect(storage.budget.inUse).toBe(0);
  });

  it('a budget smaller than one chunk still works: each chunk then runs alone', async () => {
    const storage = await open(new MemoryStorage(), settings([2, 'k2'], { limit: 1000 }));
    const plains = [randomBytes(150_000), randomBytes(70_000)];
    await Promise.all(
      plains.map((p, i) => storage.create(dicom(i === 0 ? UUID : OTHER), p.length, Readable.from([p]))),
    );
    const back = await Promise.all(
      [UUID, OTHER].map(async (u) => buffer((await storage.read(dicom(u))).body)),
    );
    back.forEach((bytes, i) => expect(bytes.equals(plains[i]!)).toBe(true));
    expect(storage.budget.peakInUse).toBe(1000);
    expect(storage.budget.inUse).toBe(0);
  });
});
