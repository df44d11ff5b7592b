import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { IntegrityError, KeyError } from '../errors.js';
import { A1_OVERHEAD, A1_PREFIX_SIZE, unwrapPrefix } from './a1-format.js';
import { createA1DecryptStream } from './a1-decrypt-stream.js';
import { createA1EncryptStreamWith } from './a1-encrypt-stream.js';
import { Keyring, loadKeyring, loadMasterKey } from './keyring.js';
import {
  keyFileOf,
  manifest,
  runExpectingError,
  runThrough,
  vectorPath,
  type VectorManifest,
} from './__tests__/helpers.js';

const read = (file: string): Buffer => readFileSync(vectorPath(file));

async function vectorKeyring(): Promise<Keyring> {
  const { current, previous } = manifest.keySet;
  return loadKeyring(
    { id: current, path: keyFileOf(current) },
    previous.map((id) => ({ id, path: keyFileOf(id) })),
  );
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** What we must say for each failure the original reported, mapped from the manifest. */
function expectationFor(vector: VectorManifest['negative'][number]): {
  type: new (...args: never[]) => Error;
  pattern: RegExp;
} {
  const message = vector.cpp.stringApi.message;
  if (vector.size < A1_OVERHEAD) {
    return {
      type: IntegrityError,
      pattern: new RegExp(`is ${vector.size} bytes, shorter than the 86-byte A1`),
    };
  }
  const version = /version '(.*)' is not supported/.exec(message);
  if (version) {
    return { type: IntegrityError, pattern: new RegExp(`version bytes are '${escape(version[1]!)}'`) };
  }
  const missingKey = /master key whose id is '([0-9a-f]{8})' could not be found/.exec(message);
  if (missingKey) {
    const id = Buffer.from(missingKey[1]!, 'hex').readUInt32LE(0);
    return {
      type: KeyError,
      pattern: new RegExp(`master key id ${id}, which is not configured \\(known ids: `),
    };
  }
  if (/message hash or MAC not valid/.test(message)) {
    return { type: IntegrityError, pattern: /failed A1 authentication \(the GCM tag does not verify\)/ };
  }
  throw new Error(`no expectation for negative vector ${vector.name} (original said: ${message})`);
}

describe('A1 reference vectors', () => {
  let keyring: Keyring;
  beforeAll(async () => {
    keyring = await vectorKeyring();
  });

  it('has vectors to test', () => {
    expect(manifest.vectors.length).toBeGreaterThan(0);
    expect(manifest.negative.length).toBeGreaterThan(0);
  });

  describe.each(manifest.vectors.map((v) => [v.name, v] as const))('%s', (_name, vector) => {
    const plaintext = read(vector.plaintextFile);
    const ciphertext = read(vector.ciphertextFile);

    it('matches its manifest sizes', () => {
      expect(plaintext.length).toBe(vector.plaintextSize);
      expect(ciphertext.length).toBe(vector.ciphertextSize);
      expect(ciphertext.length).toBe(plaintext.length + A1_OVERHEAD);
    });

    const chunkSizes =
      ciphertext.length <= 70_000 ? [1, 15, 16, 17, 70, 86, 4096, 65536] : [4096, 65536, 1 << 20];
    it.each(chunkSizes)('decrypts byte-exact when fed %i bytes at a time', async (chunkSize) => {
      const decrypted = await runThrough(createA1DecryptStream(keyring), ciphertext, chunkSize);
      expect(decrypted.equals(plaintext)).toBe(true);
    });

    it.each(chunkSizes)(
      'decrypts byte-exact when its size is known, fed %i bytes at a time',
      async (chunkSize) => {
        const stream = createA1DecryptStream(keyring, { size: ciphertext.length });
        const decrypted = await runThrough(stream, ciphertext, chunkSize);
        expect(decrypted.equals(plaintext)).toBe(true);
      },
    );

    it('is reproduced exactly by our writer from the IV and data key it carries', async () => {
      const master = await loadMasterKey({ id: vector.keyId, path: keyFileOf(vector.keyId) });
      const { iv, dataKey } = unwrapPrefix(ciphertext.subarray(0, A1_PREFIX_SIZE), master.key);
      for (const chunkSize of [7, 65536]) {
        const encrypted = await runThrough(
          createA1EncryptStreamWith(master, iv, dataKey),
          plaintext,
          chunkSize,
        );
        expect(encrypted.toString('hex')).toBe(ciphertext.toString('hex'));
      }
    });
  });

  describe.each(manifest.negative.map((v) => [v.name, v] as const))('negative %s', (_name, vector) => {
    const bytes = read(vector.file);
    const expected = expectationFor(vector);

    it.each([1, 16, 65536])(
      'is refused with a clear error when fed %i bytes at a time',
      async (chunkSize) => {
        const { error } = await runExpectingError(createA1DecryptStream(keyring), bytes, chunkSize);
        expect(error).toBeInstanceOf(expected.type);
        expect(error.message).toMatch(expected.pattern);
      },
    );

    it.each([1, 16, 65536])(
      'is refused with the same error when its size is known, fed %i bytes at a time',
      async (chunkSize) => {
        const stream = createA1DecryptStream(keyring, { size: bytes.length });
        const { error } = await runExpectingError(stream, bytes, chunkSize);
        expect(error).toBeInstanceOf(expected.type);
        expect(error.message).toMatch(expected.pattern);
      },
    );

    it('names the object in the error', async () => {
      const stream = createA1DecryptStream(keyring, { label: '0a1b2c3d-test' });
      const { error } = await runExpectingError(stream, bytes);
      expect(error.message).toContain('object 0a1b2c3d-test');
    });
  });
});

describe('A1 streams over inputs larger than one cipher call', () => {
  it('write and read the same bytes whatever the input pieces, and a changed byte fails', async () => {
    const master = { id: 1, key: randomBytes(32) };
    const ring = new Keyring(master);
    const plaintext = randomBytes(300_001);
    const [iv, dataKey] = [randomBytes(32), randomBytes(32)];
    const reference = await runThrough(createA1EncryptStreamWith(master, iv, dataKey), plaintext, 7);
    for (const pieces of [1024 * 1024, 200_000, 70_001, 65_536, 17]) {
      const encrypted = await runThrough(createA1EncryptStreamWith(master, iv, dataKey), plaintext, pieces);
      expect(encrypted.equals(reference)).toBe(true);
      const decrypted = await runThrough(createA1DecryptStream(ring), reference, pieces);
      expect(decrypted.equals(plaintext)).toBe(true);
      const sized = createA1DecryptStream(ring, { size: reference.length });
      expect((await runThrough(sized, reference, pieces)).equals(plaintext)).toBe(true);
    }
    const damaged = Buffer.from(reference);
    damaged[150_000] = damaged[150_000]! ^ 1;
    const { error } = await runExpectingError(createA1DecryptStream(ring), damaged, 200_000);
    expect(error).toBeInstanceOf(IntegrityError);
  });
});

describe('A1 decryption of an object whose size is known', () => {
  const master = { id: 1, key: randomBytes(32) };
  const ring = new Keyring(master);
  const plaintext = randomBytes(100_000);
  let object: Buffer;
  beforeAll(async () => {
    object = await runThrough(createA1EncryptStreamWith(master, randomBytes(32), randomBytes(32)), plaintext);
  });

  it.each([1, 16, 65_536])(
    'refuses an input shorter than the size, fed %i bytes at a time',
    async (pieces) => {
      const stream = createA1DecryptStream(ring, { size: object.length, label: 'short' });
      const { error } = await runExpectingError(stream, object.subarray(0, object.length - 5), pieces);
      expect(error).toBeInstanceOf(IntegrityError);
      expect(error.message).toMatch(
        /object short ended after 100081 of its 100086 stored bytes: it is truncated/,
      );
    },
  );

  it.each([1, 16, 65_536])(
    'refuses an input longer than the size, fed %i bytes at a time',
    async (pieces) => {
      const stream = createA1DecryptStream(ring, { size: object.length - 3, label: 'long' });
      const { error, emitted } = await runExpectingError(stream, object, pieces);
      expect(error).toBeInstanceOf(IntegrityError);
      expect(error.message).toMatch(/object long has more bytes than its stored size of 100083 bytes/);
      expect(emitted).toBeLessThan(plaintext.length);
    },
  );

  it('refuses a size below the A1 overhead', async () => {
    const stream = createA1DecryptStream(ring, { size: 85 });
    const { error } = await runExpectingError(stream, object.subarray(0, 85));
    expect(error.message).toMatch(/is 85 bytes, shorter than the 86-byte A1 overhead/);
  });

  it('fails on a changed tag byte, whatever the pieces', async () => {
    const damaged = Buffer.from(object);
    damaged[damaged.length - 3] = damaged[damaged.length - 3]! ^ 0x40;
    for (const pieces of [7, 65_536, 99_990]) {
      const stream = createA1DecryptStream(ring, { size: damaged.length });
      const { error } = await runExpectingError(stream, damaged, pieces);
      expect(error).toBeInstanceOf(IntegrityError);
      expect(error.message).toMatch(/failed A1 authentication/);
    }
  });
});
