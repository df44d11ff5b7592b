import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { fileURLToPath } from 'node:url';
import { ContentType } from '../storage/contract.js';
import { ByteBudget } from './byte-budget.js';
import { createC1DecryptStream } from './c1-decrypt-stream.js';
import { createC1EncryptStreamWith } from './c1-encrypt-stream.js';
import { decodeC1Header, unwrapDataKey } from './c1-format.js';
import { EncryptedStorage } from './encrypted-storage.js';
import { loadKeyring, loadMasterKey, type Keyring } from './keyring.js';
import { runExpectingError, runThrough } from './__tests__/helpers.js';
import { MemoryStorage } from './__tests__/memory-storage.js';

const DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../fixtures/c1-vectors');

interface C1Manifest {
  keys: { keyId: number; keyFile: string }[];
  keySet: { current: number; previous: number[] };
  vectors: {
    name: string;
    keyId: number;
    uuid: string;
    contentType: number;
    chunkSize: number;
    chunkCount: number;
    noncePrefix: string;
    dataKey: string;
    plaintextFile: string;
    objectFile: string;
    plaintextSize: number;
    objectSize: number;
  }[];
  negative: {
    name: string;
    file: string;
    of: string;
    mutation: string;
    messagePattern: string;
    keyFile?: string;
    readAs?: { uuid: string; contentType: number };
  }[];
}

const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as C1Manifest;
const read = (file: string): Buffer => readFileSync(join(DIR, file));
const keyFileOf = (id: number): string => join(DIR, manifest.keys.find((k) => k.keyId === id)!.keyFile);

async function keyringWith(currentPath?: string): Promise<Keyring> {
  const { current, previous } = manifest.keySet;
  return loadKeyring(
    { id: current, path: currentPath === undefined ? keyFileOf(current) : join(DIR, currentPath) },
    previous.map((id) => ({ id, path: keyFileOf(id) })),
  );
}

describe('C1 test vectors', () => {
  let keyring: Keyring;
  beforeAll(async () => {
    keyring = await keyringWith();
  });

  it('has vectors to test', () => {
    expect(manifest.vectors.length).toBeGreaterThanOrEqual(6);
    expect(manifest.negative.length).toBeGreaterThanOrEqual(10);
  });

  describe.each(manifest.vectors.map((v) => [v.name, v] as const))('%s', (_name, vector) => {
    const plaintext = read(vector.plaintextFile);
    const object = read(vector.objectFile);

    it('has the layout its manifest states', async () => {
      expect(plaintext.length).toBe(vector.plaintextSize);
      expect(object.length).toBe(vector.objectSize);
      expect(object.length).toBe(105 + vector.plaintextSize + 16 * vector.chunkCount);
      const header = decodeC1Header(object, vector.name);
      expect(header).toMatchObject({
        keyId: vector.keyId,
        chunkSize: vector.chunkSize,
        plaintextSize: vector.plaintextSize,
        contentType: vector.contentType,
        uuid: vector.uuid,
      });
      expect(header.noncePrefix.toString('hex')).toBe(vector.noncePrefix);
      const master = await loadMasterKey({ id: vector.keyId, path: keyFileOf(vector.keyId) });
      expect(unwrapDataKey(master.key, header.wrappedKey)?.toString('hex')).toBe(vector.dataKey);
    });

    it.each([1, 105, 1000, 65_552, 1 << 20])(
      'decrypts byte-exact when fed %i bytes at a time',
      async (size) => {
        const expected = { uuid: vector.uuid, type: vector.contentType };
        const plain = await runThrough(createC1DecryptStream(keyring, { expected }), object, size);
        expect(plain.equals(plaintext)).toBe(true);
      },
    );

    it('is reproduced byte-exact by our writer from its nonce prefix and data key', async () => {
      const master = await loadMasterKey({ id: vector.keyId, path: keyFileOf(vector.keyId) });
      for (const size of [7, 65_536]) {
        const stream = createC1EncryptStreamWith(
          master,
          Buffer.from(vector.noncePrefix, 'hex'),
          Buffer.from(vector.dataKey, 'hex'),
          {
            size: vector.plaintextSize,
            attachment: { uuid: vector.uuid, type: vector.contentType },
            chunkSize: vector.chunkSize,
          },
        );
        expect((await runThrough(stream, plaintext, size)).toString('hex')).toBe(object.toString('hex'));
      }
    });

    it('reads whole and in ranges through the encrypted storage', async () => {
      const inner = new MemoryStorage();
      const key = { uuid: vector.uuid, type: vector.contentType as ContentType };
      inner.objects.set(vector.uuid, object);
      const storage = new EncryptedStorage(inner, keyring, new ByteBudget(1 << 20));
      expect((await buffer((await storage.read(key)).body)).equals(plaintext)).toBe(true);
      const middle = Math.floor(vector.plaintextSize / 2);
      const length = Math.min(4096, vector.plaintextSize - middle);
      const range = await buffer(await storage.readRange(key, middle, length));
      expect(range.equals(plaintext.subarray(middle, middle + length))).toBe(true);
    });
  });

  describe.each(manifest.negative.map((v) => [v.name, v] as const))('negative %s', (_name, vector) => {
    const bytes = read(vector.file);
    const of = manifest.vectors.find((v) => v.name === vector.of)!;
    const attachment = vector.readAs ?? { uuid: of.uuid, contentType: of.contentType };
    const key = { uuid: attachment.uuid, type: attachment.contentType as ContentType };
    const pattern = new RegExp(vector.messagePattern);

    it.each([1, 1000, 65_536])(
      'is refused by the stream reader fed %i bytes at a time, passing on only verified chunks',
      async (size) => {
        const ring = await keyringWith(vector.keyFile);
        const stream = createC1DecryptStream(ring, { expected: key, label: 'neg.c1' });
        const { error, emitted } = await runExpectingError(stream, bytes, size);
        expect(error.message).toMatch(pattern);
        expect(error.message).toContain('object neg.c1');
        // Only the chunks before a damaged one may come out, and they are authentic.
        const plaintext = read(of.plaintextFile);
        expect(emitted % of.chunkSize === 0 || emitted === plaintext.length).toBe(true);
        if (vector.name !== 'extended') expect(emitted).toBeLessThan(plaintext.length);
      },
    );

    it('is refused by the encrypted storage, whole and as a range, naming the object', async () => {
      const inner = new MemoryStorage();
      inner.objects.set(key.uuid, bytes);
      const storage = new EncryptedStorage(inner, await keyringWith(vector.keyFile), new ByteBudget(1 << 20));
      const whole = await storage
        .read(key)
        .then((r) => buffer(r.body))
        .then(
          () => undefined,
          (error: Error) => error,
        );
      expect(whole?.message).toMatch(pattern);
      expect(whole?.message).toContain(`object ${key.uuid}`);
      const range = await storage
        .readRange(key, 2000, 100)
        .then((r) => buffer(r))
        .then(
          () => undefined,
          (error: Error) => error,
        );
      // A range in the last chunk fails too, except where the damage lies only in earlier chunks.
      if (
        !['flipped-ciphertext-byte', 'flipped-tag-byte', 'swapped-chunks', 'extended'].includes(vector.name)
      ) {
        expect(range).toBeInstanceOf(Error);
      }
    });
  });
});
