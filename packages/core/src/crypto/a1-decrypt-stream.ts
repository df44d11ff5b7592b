import { createDecipheriv, type DecipherGCM } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError, KeyError } from '../errors.js';
import { consumesChunks } from '../storage/pipe-into.js';
import {
  A1_MAGIC,
  A1_OVERHEAD,
  A1_PREFIX_SIZE,
  GCM_TAG_SIZE,
  KEY_ID_OFFSET,
  describeMagic,
  unwrapPrefix,
  A1_CIPHER_CALL_BYTES,
} from './a1-format.js';
import { withBudgetSoon, type ByteBudget } from './byte-budget.js';
import type { Keyring } from './keyring.js';

export interface A1DecryptOptions {
  /** Shared `MaxConcurrentInputSize` budget; none means unbounded. */
  readonly budget?: ByteBudget;
  /** For messages, e.g. the object's uuid or a file path. */
  readonly label?: string;
  /**
   * The whole object's size (prefix, body and tag), when known, as a stored object's is: the tag's
   * place is then known, so the body is decrypted as it comes, with no bytes held back or copied.
   * The stream fails with `IntegrityError` if the input is not exactly this long.
   */
  readonly size?: number;
}

/**
 * A Transform that turns an A1 object back into its plaintext, choosing the master key by the
 * id the object carries. Memory stays bounded whatever the size: the last 16 bytes are held
 * back as the GCM tag until the input ends.
 *
 * IMPORTANT: plaintext flows out before the tag can be checked (the tag is the last 16 bytes).
 * Treat the output as good only once the stream has ended WITHOUT error; until then it may be
 * forged or corrupted. The stream fails with `IntegrityError` when the tag does not verify, the
 * input is shorter than 86 bytes or does not start with "A1", and with `KeyError` when its
 * master key id is not in the keyring.
 */
export function createA1DecryptStream(keyring: Keyring, options: A1DecryptOptions = {}): Transform {
  return new A1DecryptStream(keyring, options);
}

class A1DecryptStream extends Transform {
  /** Each input chunk is decrypted or copied before its write completes: pipeInto hands it back. */
  get [consumesChunks](): true {
    return true;
  }
  private readonly prefix = Buffer.alloc(A1_PREFIX_SIZE);
  private prefixLength = 0;
  private decipher: DecipherGCM | undefined;
  /** The last bytes seen (size unknown) or the tag's bytes seen so far (size known). */
  private readonly tag = Buffer.alloc(GCM_TAG_SIZE);
  private tagLength = 0;
  /** Reused for the held bytes and the next input, joined (size unknown). */
  private scratch: Buffer | undefined;
  private inputBytes = 0;
  private readonly what: string;

  constructor(
    private readonly keyring: Keyring,
    private readonly options: A1DecryptOptions,
  ) {
    super();
    this.what = options.label === undefined ? 'input' : `object ${options.label}`;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let body: Buffer;
    const size = this.options.size;
    try {
      this.inputBytes += chunk.length;
      if (size !== undefined && (this.inputBytes > size || size < A1_OVERHEAD)) {
        throw size < A1_OVERHEAD
          ? this.tooShort(size)
          : new IntegrityError(
              `${this.what} has more bytes than its stored size of ${size} bytes: it changed while being read`,
            );
      }
      body = this.decipher === undefined ? this.takePrefix(chunk) : chunk;
    } catch (error) {
      callback(error as Error);
      return;
    }
    if (size === undefined) this.takeBody(body, callback);
    else this.takeSizedBody(body, size, callback);
  }

  override _flush(callback: TransformCallback): void {
    try {
      const size = this.options.size;
      if (size !== undefined && this.inputBytes !== size && size >= A1_OVERHEAD) {
        throw new IntegrityError(
          `${this.what} ended after ${this.inputBytes} of its ${size} stored bytes: it is truncated`,
        );
      }
      if (this.decipher === undefined || this.tagLength < GCM_TAG_SIZE) throw this.tooShort(this.inputBytes);
      this.decipher.setAuthTag(this.tag);
      let last: Buffer;
      try {
        last = this.decipher.final();
      } catch (error) {
        throw new IntegrityError(
          `${this.what} failed A1 authentication (the GCM tag does not verify): it is corrupted, truncated ` +
            'or extended, or its key id names a different key than it was encrypted with; none of its bytes ' +
            'may be used',
          { cause: error },
        );
      }
      if (last.length > 0) this.push(last);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  private tooShort(bytes: number): IntegrityError {
    return new IntegrityError(
      `${this.what} is ${bytes} bytes, shorter than the ${A1_OVERHEAD}-byte A1 overhead: ` +
        'it is truncated or not an A1 object',
    );
  }

  /** Fill the 70-byte prefix; check version and key id as soon as they are in; return the rest. */
  private takePrefix(chunk: Buffer): Buffer {
    const before = this.prefixLength;
    const taken = Math.min(chunk.length, A1_PREFIX_SIZE - before);
    chunk.copy(this.prefix, before, 0, taken);
    this.prefixLength += taken;
    const magicEnd = A1_MAGIC.length;
    if (before < magicEnd && this.prefixLength >= magicEnd) {
      const magic = this.prefix.subarray(0, magicEnd);
      if (!magic.equals(A1_MAGIC)) {
        throw new IntegrityError(
          `${this.what} is not an A1 object: its version bytes are ${describeMagic(magic)}, only 'A1' is supported`,
        );
      }
    }
    if (this.prefixLength === A1_PREFIX_SIZE) {
      const keyId = this.prefix.readUInt32LE(KEY_ID_OFFSET);
      if (!this.keyring.has(keyId)) {
        throw new KeyError(
          `${this.what} was encrypted with master key id ${keyId}, which is not configured ` +
            `(known ids: ${this.keyring.ids().join(', ')})`,
        );
      }
      const { iv, dataKey } = unwrapPrefix(this.prefix, this.keyring.get(keyId).key);
      this.decipher = createDecipheriv('aes-256-gcm', dataKey, iv);
      this.decipher.setAAD(this.prefix);
    }
    return chunk.subarray(taken);
  }

  /** The size is known: `body` ends at the input's end; what lies past the body is the tag's. */
  private takeSizedBody(body: Buffer, size: number, done: (error?: Error) => void): void {
    const tagAt = size - GCM_TAG_SIZE;
    const bodyAt = this.inputBytes - body.length;
    const cut = Math.max(0, Math.min(body.length, tagAt - bodyAt));
    if (cut < body.length) {
      this.tagLength += body.copy(this.tag, bodyAt + cut - tagAt, cut);
    }
    this.decrypt(cut === body.length ? body : body.subarray(0, cut), done);
  }

  /**
   * The size is unknown: decrypt all but the last 16 bytes seen so far. The bytes held from the
   * previous input go through the cipher together with this one (copied into a reused buffer),
   * so each input gives one piece of output, not a 16-byte piece besides.
   */
  private takeBody(chunk: Buffer, done: (error?: Error) => void): void {
    if (chunk.length === 0) {
      done();
      return;
    }
    const held = this.tagLength;
    const cut = chunk.length - GCM_TAG_SIZE;
    if (cut < 0) {
      // Fewer than 16 new bytes (rare): join with the held ones, keep the last 16.
      const joined = Buffer.concat([this.tag.subarray(0, held), chunk]);
      const ready = Math.max(0, joined.length - GCM_TAG_SIZE);
      this.tagLength = joined.copy(this.tag, 0, ready);
      this.decrypt(joined.subarray(0, ready), done);
      return;
    }
    if (held === 0) {
      this.tagLength = chunk.copy(this.tag, 0, cut);
      this.decrypt(chunk.subarray(0, cut), done);
      return;
    }
    // The held bytes and the start of this input, joined in a buffer of at most one cipher call;
    // the rest of a large input is decrypted in place.
    const joined = Math.min(cut, A1_CIPHER_CALL_BYTES - held);
    const size = held + joined;
    if (this.scratch === undefined || this.scratch.length < size) this.scratch = Buffer.allocUnsafe(size);
    this.tag.copy(this.scratch, 0, 0, held);
    chunk.copy(this.scratch, held, 0, joined);
    this.tagLength = chunk.copy(this.tag, 0, cut);
    this.decrypt(this.scratch.subarray(0, size), (error) => {
      if (error !== undefined || joined === cut) done(error);
      else this.decrypt(chunk.subarray(joined, cut), done);
    });
  }

  /** Synchronous unless the budget makes it wait (no promise per input on the usual path). */
  private decrypt(bytes: Buffer, done: (error?: Error) => void): void {
    if (bytes.length === 0) {
      done();
      return;
    }
    const decipher = this.decipher!;
    withBudgetSoon(
      this.options.budget,
      bytes,
      (slice) => {
        const out = decipher.update(slice);
        if (out.length > 0) this.push(out);
      },
      done,
      A1_CIPHER_CALL_BYTES,
    );
  }
}
