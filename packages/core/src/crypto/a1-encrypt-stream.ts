import { createCipheriv, randomBytes, type CipherGCM } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { ObjectStorageError } from '../errors.js';
import { consumesChunks } from '../storage/pipe-into.js';
import { A1_CIPHER_CALL_BYTES, A1_IV_SIZE, A1_KEY_SIZE, buildPrefix, type MasterKey } from './a1-format.js';
import { withBudgetSoon, type ByteBudget } from './byte-budget.js';

export interface A1EncryptOptions {
  /** Shared `MaxConcurrentInputSize` budget; none means unbounded. */
  readonly budget?: ByteBudget;
  /** When set, the stream fails unless its input is exactly this many bytes. */
  readonly expectedSize?: number;
  /** For messages, e.g. the object's uuid or a file path. */
  readonly label?: string;
}

/**
 * A Transform that turns plaintext into an A1 object: prefix, AES-256-GCM body, tag.
 * A fresh random IV and data key are drawn for every stream. Its output is `input + 86` bytes.
 */
export function createA1EncryptStream(master: MasterKey, options: A1EncryptOptions = {}): Transform {
  // One draw for both (each draw is a call into OpenSSL's generator).
  const random = randomBytes(A1_IV_SIZE + A1_KEY_SIZE);
  return createA1EncryptStreamWith(
    master,
    random.subarray(0, A1_IV_SIZE),
    random.subarray(A1_IV_SIZE),
    options,
  );
}

/**
 * Internal, for tests that prove the writer against the reference vectors: encrypt with a given
 * IV and data key. Never reuse an IV/data key pair for two objects.
 */
export function createA1EncryptStreamWith(
  master: MasterKey,
  iv: Buffer,
  dataKey: Buffer,
  options: A1EncryptOptions = {},
): Transform {
  return new A1EncryptStream(master, iv, dataKey, options);
}

class A1EncryptStream extends Transform {
  /** Each input chunk is encrypted (copied) before its write completes: pipeInto hands it back. */
  get [consumesChunks](): true {
    return true;
  }
  private readonly prefix: Buffer;
  private readonly cipher: CipherGCM;
  private prefixPushed = false;
  private inputBytes = 0;

  constructor(
    master: MasterKey,
    iv: Buffer,
    dataKey: Buffer,
    private readonly options: A1EncryptOptions,
  ) {
    super();
    if (iv.length !== A1_IV_SIZE || dataKey.length !== A1_KEY_SIZE) {
      throw new RangeError(`A1 needs a ${A1_IV_SIZE}-byte IV and a ${A1_KEY_SIZE}-byte data key`);
    }
    this.prefix = buildPrefix(master, iv, dataKey);
    this.cipher = createCipheriv('aes-256-gcm', dataKey, iv);
    this.cipher.setAAD(this.prefix);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.inputBytes += chunk.length;
    const expected = this.options.expectedSize;
    if (expected !== undefined && this.inputBytes > expected) {
      callback(this.sizeError());
      return;
    }
    this.pushPrefixOnce();
    withBudgetSoon(
      this.options.budget,
      chunk,
      (slice) => {
        const out = this.cipher.update(slice);
        if (out.length > 0) this.push(out);
      },
      callback,
      A1_CIPHER_CALL_BYTES,
    );
  }

  override _flush(callback: TransformCallback): void {
    const expected = this.options.expectedSize;
    if (expected !== undefined && this.inputBytes !== expected) {
      callback(this.sizeError());
      return;
    }
    this.pushPrefixOnce();
    const last = this.cipher.final();
    if (last.length > 0) this.push(last);
    this.push(this.cipher.getAuthTag());
    callback();
  }

  private pushPrefixOnce(): void {
    if (!this.prefixPushed) {
      this.prefixPushed = true;
      this.push(this.prefix);
    }
  }

  private sizeError(): ObjectStorageError {
    const what = this.options.label === undefined ? 'input' : `object ${this.options.label}`;
    const atLeast = this.inputBytes > (this.options.expectedSize ?? 0) ? 'at least ' : '';
    return new ObjectStorageError(
      `${what}: the body yielded ${atLeast}${this.inputBytes} bytes, but its size was given as ` +
        `${this.options.expectedSize} bytes`,
    );
  }
}
