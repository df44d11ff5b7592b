import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from '@orthanc-object-storage/core';

/**
 * Pass bytes through while counting them and, when the blob has a stored Content-MD5,
 * hashing them; fail at the end if the count or the digest differs. The consumer only
 * treats the bytes as good once the stream has ended without error.
 */
export class VerifiedStream extends Transform {
  private received = 0;
  private readonly hash: Hash | undefined;

  constructor(
    private readonly expectedBytes: number,
    private readonly expectedMd5: Uint8Array | undefined,
    private readonly what: string,
  ) {
    super();
    this.hash = expectedMd5 === undefined ? undefined : createHash('md5');
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    if (this.received > this.expectedBytes) {
      callback(
        new IntegrityError(`${this.what}: received more than the ${this.expectedBytes} bytes announced`),
      );
      return;
    }
    this.hash?.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.received !== this.expectedBytes) {
      callback(
        new IntegrityError(`${this.what}: received ${this.received} bytes, expected ${this.expectedBytes}`),
      );
      return;
    }
    if (this.hash !== undefined && this.expectedMd5 !== undefined) {
      const actual = this.hash.digest();
      if (!actual.equals(Buffer.from(this.expectedMd5))) {
        callback(
          new IntegrityError(
            `${this.what}: MD5 mismatch (stored Content-MD5 ${Buffer.from(this.expectedMd5).toString('base64')}, ` +
              `received bytes hash to ${actual.toString('base64')})`,
          ),
        );
        return;
      }
    }
    callback();
  }
}
