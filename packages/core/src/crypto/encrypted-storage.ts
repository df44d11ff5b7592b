import { pipeline, type Readable } from 'node:stream';
import { ConfigurationError, IntegrityError, RangeNotSatisfiableError } from '../errors.js';
import type { EncryptionSettings } from '../config/settings.js';
import type { ObjectKey, ObjectReadStream, ObjectStorage } from '../storage/contract.js';
import { A1_OVERHEAD } from './a1-format.js';
import { createA1EncryptStream } from './a1-encrypt-stream.js';
import { createA1DecryptStream } from './a1-decrypt-stream.js';
import { ByteBudget } from './byte-budget.js';
import { loadKeyring, type Keyring } from './keyring.js';
import { RangeSlice } from './range-slice.js';

/**
 * The A1 encryption layer: loads and checks the key files now, so that a bad key file fails at
 * startup, and bounds the bytes encrypted or decrypted at once across every storage it wraps by
 * `maxConcurrentInputBytes` (hybrid mode wraps both sides with one budget).
 */
export async function createEncryptionLayer(
  settings: EncryptionSettings,
): Promise<(inner: ObjectStorage) => ObjectStorage> {
  const limit = settings.maxConcurrentInputBytes;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new ConfigurationError(
      `StorageEncryption.MaxConcurrentInputSize gives a budget of ${limit} bytes; it must be a positive number of MB`,
    );
  }
  const keyring = await loadKeyring(settings.masterKey, settings.previousMasterKeys);
  const budget = new ByteBudget(limit);
  return (inner) => new EncryptedStorage(inner, keyring, budget);
}

/** Wrap a storage with A1 encryption (see createEncryptionLayer). */
export async function createEncryptedStorage(
  inner: ObjectStorage,
  settings: EncryptionSettings,
): Promise<ObjectStorage> {
  return (await createEncryptionLayer(settings))(inner);
}

const ignore = (): void => {};

/** An `ObjectStorage` that stores A1 objects in `inner` and hands out plaintext. */
export class EncryptedStorage implements ObjectStorage {
  /** A1 has one tag for the whole object: a range can only be verified by reading it all. */
  readonly supportsVerifiedRangeReads = false;

  constructor(
    private readonly inner: ObjectStorage,
    private readonly keyring: Keyring,
    private readonly budget: ByteBudget,
  ) {}

  async create(key: ObjectKey, size: number, body: Readable): Promise<void> {
    const encrypted = createA1EncryptStream(this.keyring.current, {
      budget: this.budget,
      expectedSize: size,
      label: key.uuid,
    });
    pipeline(body, encrypted, ignore);
    try {
      await this.inner.create(key, size + A1_OVERHEAD, encrypted);
    } finally {
      if (!encrypted.readableEnded) encrypted.destroy();
    }
  }

  /** The body is plaintext that is good only once it has ended without error (see the decrypt stream). */
  async read(key: ObjectKey): Promise<ObjectReadStream> {
    const stored = await this.inner.read(key);
    if (stored.size < A1_OVERHEAD) {
      stored.body.destroy();
      throw new IntegrityError(
        `object ${key.uuid} is ${stored.size} bytes, shorter than the ${A1_OVERHEAD}-byte A1 overhead: ` +
          'it is truncated or was not stored encrypted',
      );
    }
    const plain = createA1DecryptStream(this.keyring, { budget: this.budget, label: key.uuid });
    pipeline(stored.body, plain, ignore);
    return { size: stored.size - A1_OVERHEAD, body: plain };
  }

  /** Decrypts the whole object and passes on the range; fails at the end if the tag does not verify. */
  async readRange(key: ObjectKey, offset: number, length: number): Promise<Readable> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new RangeNotSatisfiableError(
        `object ${key.uuid}: range offset ${offset} and length ${length} must be non-negative integers`,
      );
    }
    const whole = await this.read(key);
    if (offset + length > whole.size) {
      whole.body.destroy();
      throw new RangeNotSatisfiableError(
        `object ${key.uuid}: range of ${length} bytes at offset ${offset} is past its end (${whole.size} bytes)`,
      );
    }
    const range = new RangeSlice(offset, length);
    pipeline(whole.body, range, ignore);
    return range;
  }

  remove(key: ObjectKey): Promise<void> {
    return this.inner.remove(key);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
