import type { Readable, Transform } from 'node:stream';
import {
  ConfigurationError,
  IntegrityError,
  ObjectStorageError,
  RangeNotSatisfiableError,
} from '../errors.js';
import type { EncryptionSettings, WriteFormat } from '../config/settings.js';
import type { ObjectKey, ObjectReadStream, ObjectStorage } from '../storage/contract.js';
import { pipeInto } from '../storage/pipe-into.js';
import { A1_MAGIC, A1_OVERHEAD, describeMagic } from './a1-format.js';
import { createA1EncryptStream } from './a1-encrypt-stream.js';
import { createA1DecryptStream } from './a1-decrypt-stream.js';
import { processBudget, type ByteBudget } from './byte-budget.js';
import {
  C1_CHUNK_SIZE,
  C1_HEADER_SIZE,
  C1_MAGIC,
  C1_TAG_SIZE,
  c1ObjectSize,
  checkC1ObjectSize,
  chunkCount,
  chunkOffset,
  chunkPlaintextSize,
  openC1Header,
  type OpenC1Header,
} from './c1-format.js';
import { createC1ChunkDecryptStream } from './c1-decrypt-stream.js';
import { createC1EncryptStream } from './c1-encrypt-stream.js';
import { loadKeyring, type Keyring } from './keyring.js';
import { RangeSlice } from './range-slice.js';
import { readHead } from './read-head.js';

/**
 * The client-side encryption layer: new objects in `settings.writeFormat` (C1 by default), both
 * A1 and C1 read, chosen by each object's first two bytes. Loads and checks the key files now, so
 * that a bad key file fails at startup; bounds the bytes encryption and decryption hold at once
 * across every storage it wraps by `maxConcurrentInputBytes` (hybrid mode wraps both sides with
 * one budget).
 */
export async function createEncryptionLayer(
  settings: EncryptionSettings,
): Promise<(inner: ObjectStorage) => EncryptedStorage> {
  const limit = settings.maxConcurrentInputBytes;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new ConfigurationError(
      `StorageEncryption.MaxConcurrentInputSize gives a budget of ${limit} bytes; it must be a positive number of MB`,
    );
  }
  const keyring = await loadKeyring(settings.masterKey, settings.previousMasterKeys);
  const budget = processBudget('MaxConcurrentInputSize', limit);
  return (inner) => new EncryptedStorage(inner, keyring, budget, settings.writeFormat ?? 'C1');
}

/** Wrap a storage with client-side encryption (see createEncryptionLayer). */
export async function createEncryptedStorage(
  inner: ObjectStorage,
  settings: EncryptionSettings,
): Promise<EncryptedStorage> {
  return (await createEncryptionLayer(settings))(inner);
}

/** Opened C1 headers of recently range-read objects: Orthanc reads several ranges of one file. */
const HEADER_CACHE_SIZE = 256;
/** A1 ranges up to this size are held back until the whole object has verified. */
const A1_HELD_RANGE_LIMIT = 16 * 1024 * 1024;

/** An `ObjectStorage` that stores encrypted objects in `inner` and hands out plaintext. */
export class EncryptedStorage implements ObjectStorage {
  /** C1 ranges are verified chunk by chunk; A1 ranges after verifying the whole object. */
  readonly supportsVerifiedRangeReads = true;
  /**
   * Headers are immutable for an attachment (Orthanc never reuses a uuid), and every chunk read
   * with a cached header is still authenticated against the stored bytes: a replaced object fails.
   */
  private readonly headers = new Map<string, OpenC1Header>();

  constructor(
    private readonly inner: ObjectStorage,
    private readonly keyring: Keyring,
    readonly budget: ByteBudget,
    readonly writeFormat: WriteFormat = 'C1',
  ) {}

  async create(key: ObjectKey, size: number, body: Readable): Promise<void> {
    this.headers.delete(cacheKey(key));
    const options = { budget: this.budget, label: key.uuid };
    let encrypted: Transform;
    let storedSize: number;
    if (this.writeFormat === 'A1') {
      encrypted = createA1EncryptStream(this.keyring.current, { ...options, expectedSize: size });
      storedSize = size + A1_OVERHEAD;
    } else {
      try {
        encrypted = createC1EncryptStream(this.keyring.current, { ...options, size, attachment: key });
      } catch (error) {
        body.destroy();
        throw new ObjectStorageError(
          `object ${key.uuid}: cannot write it in C1: ${(error as Error).message}`,
        );
      }
      storedSize = c1ObjectSize(size, C1_CHUNK_SIZE);
    }
    // The encrypt streams consume their input: pipeInto hands each body chunk back once encrypted,
    // and the body may reuse its memory for the next request.
    pipeInto(body, encrypted);
    try {
      await this.inner.create(key, storedSize, encrypted);
    } finally {
      if (!encrypted.readableEnded) encrypted.destroy();
    }
  }

  /**
   * The body is plaintext. C1 passes on only verified chunks; A1's tag is checked at the end,
   * so an A1 body is good only once it has ended without error (see the A1 decrypt stream).
   */
  async read(key: ObjectKey): Promise<ObjectReadStream> {
    const stored = await this.inner.read(key);
    const { head, body } = await readHead(stored.body, C1_HEADER_SIZE);
    try {
      const magic = head.subarray(0, 2);
      if (magic.equals(C1_MAGIC)) {
        const header = openC1Header(head, this.keyring, `object ${key.uuid}`);
        checkC1ObjectSize(header, stored.size, `object ${key.uuid}`);
        const last = chunkCount(header.plaintextSize, header.chunkSize) - 1;
        const plain = createC1ChunkDecryptStream(
          { header, inputHasHeader: true, first: 0, last, start: 0, end: header.plaintextSize },
          { budget: this.budget, label: key.uuid, expected: key },
        );
        pipeInto(body, plain);
        return { size: header.plaintextSize, body: plain };
      }
      if (magic.equals(A1_MAGIC) || stored.size < 2) {
        if (stored.size < A1_OVERHEAD) {
          throw new IntegrityError(
            `object ${key.uuid} is ${stored.size} bytes, shorter than the ${A1_OVERHEAD}-byte A1 overhead: ` +
              'it is truncated or was not stored encrypted',
          );
        }
        const plain = createA1DecryptStream(this.keyring, {
          budget: this.budget,
          label: key.uuid,
          size: stored.size,
        });
        pipeInto(body, plain);
        return { size: stored.size - A1_OVERHEAD, body: plain };
      }
      throw notEncrypted(key, magic);
    } catch (error) {
      body.destroy();
      throw error;
    }
  }

  /**
   * C1: the header and the chunks covering the range, in two backend range requests; every
   * chunk is verified before any of its bytes is passed on. A1: the whole object is decrypted
   * and the range passed on; the stream fails at the end if the tag does not verify.
   */
  async readRange(key: ObjectKey, offset: number, length: number): Promise<Readable> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new RangeNotSatisfiableError(
        `object ${key.uuid}: range offset ${offset} and length ${length} must be non-negative integers`,
      );
    }
    const what = `object ${key.uuid}`;
    let header = this.headers.get(cacheKey(key));
    if (header === undefined) {
      let head: Buffer;
      try {
        head = await collect(await this.inner.readRange(key, 0, C1_HEADER_SIZE));
      } catch (error) {
        // Shorter than a C1 header: an A1 object of fewer than 19 bytes, or a damaged one.
        if (error instanceof RangeNotSatisfiableError) return this.rangeOfWhole(key, offset, length);
        throw error;
      }
      const magic = head.subarray(0, 2);
      if (magic.equals(A1_MAGIC)) return this.rangeOfWhole(key, offset, length);
      if (!magic.equals(C1_MAGIC)) throw notEncrypted(key, magic);
      header = openC1Header(head, this.keyring, what);
    }
    if (offset + length > header.plaintextSize) {
      throw new RangeNotSatisfiableError(
        `${what}: range of ${length} bytes at offset ${offset} is past its end (${header.plaintextSize} bytes)`,
      );
    }
    // An empty range still verifies one chunk, so that even it is only answered for a sound object.
    const count = chunkCount(header.plaintextSize, header.chunkSize);
    const first = Math.min(Math.floor(offset / header.chunkSize), count - 1);
    const last = length === 0 ? first : Math.floor((offset + length - 1) / header.chunkSize);
    const spanStart = chunkOffset(header, first);
    const spanEnd = chunkOffset(header, last) + chunkPlaintextSize(header, last) + C1_TAG_SIZE;
    let chunks: Readable;
    try {
      chunks = await this.inner.readRange(key, spanStart, spanEnd - spanStart);
    } catch (error) {
      if (error instanceof RangeNotSatisfiableError) {
        throw new IntegrityError(
          `${what} is shorter than its C1 header implies (chunks ${first}..${last} of ${count} are not all there): it is truncated`,
          { cause: error },
        );
      }
      throw error;
    }
    const plain = createC1ChunkDecryptStream(
      { header, inputHasHeader: false, first, last, start: offset, end: offset + length },
      { budget: this.budget, label: key.uuid, expected: key },
    );
    const opened = header;
    // Cache only a header that authenticated a chunk and names this attachment.
    plain.once('end', () => this.rememberHeader(key, opened));
    pipeInto(chunks, plain);
    return plain;
  }

  /**
   * Decrypts the whole object and passes on the range once the tag has verified (ranges up to
   * 16 MiB; a larger one streams and fails at the end if the tag does not verify).
   */
  private async rangeOfWhole(key: ObjectKey, offset: number, length: number): Promise<Readable> {
    const whole = await this.read(key);
    if (offset + length > whole.size) {
      whole.body.destroy();
      throw new RangeNotSatisfiableError(
        `object ${key.uuid}: range of ${length} bytes at offset ${offset} is past its end (${whole.size} bytes)`,
      );
    }
    // Ranges Orthanc asks for (headers, frames) are small: hold them until the tag verified.
    const range = new RangeSlice(offset, length, length <= A1_HELD_RANGE_LIMIT);
    pipeInto(whole.body, range);
    return range;
  }

  remove(key: ObjectKey): Promise<void> {
    this.headers.delete(cacheKey(key));
    return this.inner.remove(key);
  }

  private rememberHeader(key: ObjectKey, header: OpenC1Header): void {
    const name = cacheKey(key);
    this.headers.delete(name);
    this.headers.set(name, header);
    if (this.headers.size > HEADER_CACHE_SIZE) this.headers.delete(this.headers.keys().next().value!);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

const cacheKey = (key: ObjectKey): string => `${key.type}/${key.uuid}`;

function notEncrypted(key: ObjectKey, magic: Buffer): IntegrityError {
  return new IntegrityError(
    `object ${key.uuid} is not encrypted by these plugins: its version bytes are ${describeMagic(magic)}, ` +
      "expected 'C1' or 'A1' (was it stored with encryption off?)",
  );
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream as AsyncIterable<Buffer>) parts.push(part);
  return Buffer.concat(parts);
}
