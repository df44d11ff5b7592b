import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError, ObjectStorageError } from '@orthanc-object-storage/core';
import { Crc32c } from './crc32c.js';

/** `x-goog-hash: crc32c=...,md5=...` split into its parts (base64 values). */
export function parseGoogHash(header: string | string[] | undefined): { crc32c?: string; md5?: string } {
  const result: { crc32c?: string; md5?: string } = {};
  for (const value of Array.isArray(header) ? header : header === undefined ? [] : [header]) {
    for (const part of value.split(',')) {
      const at = part.indexOf('=');
      if (at < 0) continue;
      const kind = part.slice(0, at).trim();
      const digest = part.slice(at + 1).trim();
      if (kind === 'crc32c' || kind === 'md5') result[kind] = digest;
    }
  }
  return result;
}

/**
 * Pass bytes through, then fail at the end unless exactly `expectedBytes` went through and
 * (when given) their MD5, else their CRC32C, matches. MD5 is preferred: it is native and fast.
 */
export class VerifyingStream extends Transform {
  private received = 0;
  private readonly md5: Hash | undefined;
  private readonly crc: Crc32c | undefined;

  constructor(
    private readonly what: string,
    private readonly expectedBytes: number,
    private readonly expected: { crc32c?: string; md5?: string },
  ) {
    super();
    this.md5 = expected.md5 !== undefined ? createHash('md5') : undefined;
    this.crc = this.md5 === undefined && expected.crc32c !== undefined ? new Crc32c() : undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    if (this.received > this.expectedBytes) {
      callback(new IntegrityError(`${this.what}: more than the ${this.expectedBytes} bytes announced`));
      return;
    }
    this.md5?.update(chunk);
    this.crc?.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.received !== this.expectedBytes) {
      callback(
        new IntegrityError(`${this.what}: got ${this.received} bytes, expected ${this.expectedBytes}`),
      );
      return;
    }
    if (this.md5 !== undefined && this.md5.digest('base64') !== this.expected.md5) {
      callback(new IntegrityError(`${this.what}: MD5 mismatch, the bytes read are not the bytes stored`));
      return;
    }
    if (this.crc !== undefined && this.crc.digestBase64() !== this.expected.crc32c) {
      callback(new IntegrityError(`${this.what}: CRC32C mismatch, the bytes read are not the bytes stored`));
      return;
    }
    callback();
  }
}

/** Fails unless exactly `expectedBytes` pass through (the size given to `put`). */
export class ExactLengthStream extends Transform {
  private received = 0;

  constructor(
    private readonly what: string,
    private readonly expectedBytes: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    if (this.received > this.expectedBytes) {
      callback(
        new ObjectStorageError(`${this.what}: body is longer than the declared ${this.expectedBytes} bytes`),
      );
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.received !== this.expectedBytes) {
      callback(
        new ObjectStorageError(
          `${this.what}: body has ${this.received} bytes, declared ${this.expectedBytes}`,
        ),
      );
      return;
    }
    callback();
  }
}
