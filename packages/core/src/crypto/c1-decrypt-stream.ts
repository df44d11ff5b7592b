import { createDecipheriv } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from '../errors.js';
import type { ObjectKey } from '../storage/contract.js';
import { consumesChunks } from '../storage/pipe-into.js';
import type { ByteBudget } from './byte-budget.js';
import {
  C1_HEADER_SIZE,
  C1_TAG_SIZE,
  checkC1Binding,
  chunkCount,
  chunkNonce,
  chunkPlaintextSize,
  openC1Header,
  type OpenC1Header,
} from './c1-format.js';
import type { Keyring } from './keyring.js';
import { RecordCutter } from './record-cutter.js';

export interface C1DecryptOptions {
  /** Shared `MaxConcurrentInputSize` budget; none means unbounded. */
  readonly budget?: ByteBudget;
  /** For messages, e.g. the object's uuid or a file path. */
  readonly label?: string;
  /** The attachment Orthanc asked for: an object whose header names another one is refused. */
  readonly expected?: ObjectKey;
}

export interface C1ChunkRange {
  /** The header, already read and opened. */
  readonly header: OpenC1Header;
  /** Whether the input starts with the header's 105 bytes (a whole object) or with chunk `first`. */
  readonly inputHasHeader: boolean;
  /** Chunks the input holds, inclusive. */
  readonly first: number;
  readonly last: number;
  /** Plaintext bytes to pass on, [start, end) in the object's plaintext. */
  readonly start: number;
  readonly end: number;
}

/**
 * A Transform that turns a whole C1 object into its plaintext. The header is read and its data
 * key unwrapped with the master key its id names. Only authenticated bytes come out: each chunk
 * is passed on after its tag verified, and the stream fails on a bad tag, a truncation (missing
 * final chunk), extra bytes, or (with `expected`) an object bound to another attachment.
 */
export function createC1DecryptStream(keyring: Keyring, options: C1DecryptOptions = {}): Transform {
  return new C1DecryptStream(options, keyring, undefined);
}

/** The same over chunks `first..last` of an object whose header was read already (range reads). */
export function createC1ChunkDecryptStream(range: C1ChunkRange, options: C1DecryptOptions = {}): Transform {
  return new C1DecryptStream(options, undefined, range);
}

/** Decrypt and verify one chunk (ciphertext followed by its tag); IntegrityError on a bad tag. */
export function openChunk(header: OpenC1Header, index: number, record: Buffer, what: string): Buffer {
  const count = chunkCount(header.plaintextSize, header.chunkSize);
  const nonce = chunkNonce(header.noncePrefix, index, index === count - 1);
  const decipher = createDecipheriv('aes-256-gcm', header.dataKey, nonce);
  decipher.setAAD(header.bytes);
  decipher.setAuthTag(record.subarray(record.length - C1_TAG_SIZE));
  const plain = decipher.update(record.subarray(0, record.length - C1_TAG_SIZE));
  try {
    decipher.final();
  } catch (error) {
    throw new IntegrityError(
      `${what}: chunk ${index} of ${count} fails C1 authentication (its GCM tag does not verify): the ` +
        'object is corrupted, its chunks are reordered or come from another object, or its header was ' +
        'altered; none of its bytes are returned',
      { cause: error },
    );
  }
  return plain;
}

class C1DecryptStream extends Transform {
  /** Each input chunk is opened or copied before its write completes: pipeInto hands it back. */
  get [consumesChunks](): true {
    return true;
  }
  private readonly what: string;
  private headerBytes: Buffer[] = [];
  private headerLength = 0;
  private range: C1ChunkRange | undefined;
  private index = 0;
  private bindingChecked = false;
  private readonly records: RecordCutter;

  constructor(
    private readonly options: C1DecryptOptions,
    private readonly keyring: Keyring | undefined,
    range: C1ChunkRange | undefined,
  ) {
    super();
    this.records = new RecordCutter(options.budget);
    this.what = options.label === undefined ? 'input' : `object ${options.label}`;
    this.range = range;
    if (range !== undefined) {
      this.index = range.first;
      this.headerLength = range.inputHasHeader ? 0 : C1_HEADER_SIZE;
    }
  }

  override _transform(input: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let body: Buffer;
    try {
      body = this.takeHeader(input);
    } catch (error) {
      callback(error as Error);
      return;
    }
    this.records.take(
      body,
      () => this.nextRecordSize(),
      (record) => this.openAndPassOn(this.range!, record),
      callback,
    );
  }

  override _flush(callback: TransformCallback): void {
    const range = this.range;
    if (range === undefined || this.headerLength < C1_HEADER_SIZE) {
      callback(
        new IntegrityError(
          `${this.what} is ${this.headerLength} bytes, shorter than the ${C1_HEADER_SIZE}-byte C1 header: it is truncated`,
        ),
      );
      return;
    }
    if (this.index <= range.last) {
      const count = chunkCount(range.header.plaintextSize, range.header.chunkSize);
      callback(
        new IntegrityError(
          `${this.what} is truncated: it ends inside chunk ${this.index} of ${count}` +
            (range.last === count - 1 ? ' (the final chunk is missing)' : ''),
        ),
      );
      return;
    }
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.records.releaseBudget();
    callback(error);
  }

  /** Collect the 105-byte header of a whole object and open it; returns the bytes after it. */
  private takeHeader(input: Buffer): Buffer {
    if (this.headerLength >= C1_HEADER_SIZE) return input;
    const taken = Math.min(input.length, C1_HEADER_SIZE - this.headerLength);
    this.headerBytes.push(Buffer.from(input.subarray(0, taken))); // a copy: the input goes back
    this.headerLength += taken;
    if (this.headerLength === C1_HEADER_SIZE) {
      const bytes = Buffer.concat(this.headerBytes);
      this.headerBytes = [];
      if (this.range === undefined) {
        const header = openC1Header(bytes, this.keyring!, this.what);
        const last = chunkCount(header.plaintextSize, header.chunkSize) - 1;
        this.range = { header, inputHasHeader: true, first: 0, last, start: 0, end: header.plaintextSize };
      } else if (!bytes.equals(this.range.header.bytes)) {
        throw new IntegrityError(`${this.what}: its C1 header changed while it was being read`);
      }
    }
    return input.subarray(taken);
  }

  /** The size of the next chunk's record (ciphertext and tag); undefined before the header. */
  private nextRecordSize(): number | undefined {
    const range = this.range;
    if (range === undefined) return undefined;
    if (this.index > range.last)
      throw new IntegrityError(`${this.what} has extra bytes after its final chunk`);
    return chunkPlaintextSize(range.header, this.index) + C1_TAG_SIZE;
  }

  private openAndPassOn(range: C1ChunkRange, record: Buffer): void {
    this.passOn(range, openChunk(range.header, this.index, record, this.what));
    this.index += 1;
  }

  /** Pass on the verified plaintext of the current chunk that falls in [start, end). */
  private passOn(range: C1ChunkRange, plain: Buffer): void {
    if (!this.bindingChecked && this.options.expected !== undefined) {
      // Only now is the header authenticated: a damaged uuid fails the tag above instead.
      checkC1Binding(range.header, this.options.expected, this.what);
    }
    this.bindingChecked = true;
    const chunkStart = this.index * range.header.chunkSize;
    const from = Math.max(range.start - chunkStart, 0);
    const to = Math.min(range.end - chunkStart, plain.length);
    if (to > from) this.push(from === 0 && to === plain.length ? plain : plain.subarray(from, to));
  }
}
