import { createCipheriv, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { ObjectStorageError } from '../errors.js';
import { consumesChunks } from '../storage/pipe-into.js';
import type { ObjectKey } from '../storage/contract.js';
import type { MasterKey } from './a1-format.js';
import type { ByteBudget } from './byte-budget.js';
import {
  C1_CHUNK_SIZE,
  C1_DATA_KEY_SIZE,
  C1_NONCE_PREFIX_SIZE,
  chunkCount,
  chunkNonce,
  chunkPlaintextSize,
  encodeC1Header,
  type OpenC1Header,
} from './c1-format.js';
import { RecordCutter } from './record-cutter.js';

export interface C1EncryptOptions {
  /** The plaintext's size: C1 writes it in the header, so it must be known first. */
  readonly size: number;
  /** The attachment the object is bound to (its uuid and content type go in the header). */
  readonly attachment: ObjectKey;
  /** Shared `MaxConcurrentInputSize` budget; none means unbounded. */
  readonly budget?: ByteBudget;
  /** For messages, e.g. the object's uuid or a file path. */
  readonly label?: string;
  /** Chunk size; writers use 65,536 (other values for tests only). */
  readonly chunkSize?: number;
}

/** A Transform that turns exactly `size` bytes of plaintext into a C1 object, with fresh randomness. */
export function createC1EncryptStream(master: MasterKey, options: C1EncryptOptions): Transform {
  // One draw for both (each draw is a call into OpenSSL's generator).
  const random = randomBytes(C1_NONCE_PREFIX_SIZE + C1_DATA_KEY_SIZE);
  return createC1EncryptStreamWith(
    master,
    random.subarray(0, C1_NONCE_PREFIX_SIZE),
    random.subarray(C1_NONCE_PREFIX_SIZE),
    options,
  );
}

/**
 * Internal, for the test vectors: encrypt with a given nonce prefix and data key. Never reuse a
 * nonce prefix / data key pair for two objects.
 */
export function createC1EncryptStreamWith(
  master: MasterKey,
  noncePrefix: Buffer,
  dataKey: Buffer,
  options: C1EncryptOptions,
): Transform {
  const header = encodeC1Header({
    master,
    chunkSize: options.chunkSize ?? C1_CHUNK_SIZE,
    plaintextSize: options.size,
    noncePrefix,
    dataKey,
    attachment: options.attachment,
  });
  return new C1EncryptStream(header, options);
}

/** Seals one chunk: its ciphertext and tag, under the header as additional data. */
export function sealChunk(header: OpenC1Header, index: number, plaintext: Buffer): Buffer[] {
  const last = index === chunkCount(header.plaintextSize, header.chunkSize) - 1;
  const cipher = createCipheriv('aes-256-gcm', header.dataKey, chunkNonce(header.noncePrefix, index, last));
  cipher.setAAD(header.bytes);
  const body = cipher.update(plaintext);
  cipher.final();
  return [body, cipher.getAuthTag()];
}

class C1EncryptStream extends Transform {
  /** Each input chunk is sealed or copied before its write completes: pipeInto hands it back. */
  get [consumesChunks](): true {
    return true;
  }
  private headerPushed = false;
  private inputBytes = 0;
  private index = 0;
  private readonly chunks: RecordCutter;

  constructor(
    private readonly header: OpenC1Header,
    private readonly options: C1EncryptOptions,
  ) {
    super();
    this.chunks = new RecordCutter(options.budget);
  }

  override _transform(input: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.inputBytes += input.length;
    if (this.inputBytes > this.options.size) {
      callback(this.sizeError());
      return;
    }
    this.pushHeaderOnce();
    this.chunks.take(
      input,
      () => chunkPlaintextSize(this.header, this.index),
      (chunk) => this.sealAndPush(chunk),
      callback,
    );
  }

  override _flush(callback: TransformCallback): void {
    if (this.inputBytes !== this.options.size) {
      callback(this.sizeError());
      return;
    }
    this.pushHeaderOnce();
    // An empty plaintext is one empty final chunk; any other ends when its last chunk fills.
    if (this.header.plaintextSize === 0)
      for (const part of sealChunk(this.header, 0, Buffer.alloc(0))) this.push(part);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.chunks.releaseBudget();
    callback(error);
  }

  private sealAndPush(chunk: Buffer): void {
    for (const part of sealChunk(this.header, this.index, chunk)) this.push(part);
    this.index += 1;
  }

  private pushHeaderOnce(): void {
    if (!this.headerPushed) {
      this.headerPushed = true;
      this.push(this.header.bytes);
    }
  }

  private sizeError(): ObjectStorageError {
    const what = this.options.label === undefined ? 'input' : `object ${this.options.label}`;
    const atLeast = this.inputBytes > this.options.size ? 'at least ' : '';
    return new ObjectStorageError(
      `${what}: the body yielded ${atLeast}${this.inputBytes} bytes, but its size was given as ` +
        `${this.options.size} bytes`,
    );
  }
}
