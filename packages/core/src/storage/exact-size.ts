import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError, ObjectStorageError } from '../errors.js';

/**
 * Pass bytes through and fail the stream unless exactly `size` bytes flow: too many fail at
 * once, too few at the end, so a consumer never sees a clean end on a wrong size.
 * `input`: a body handed to create; `stored`: bytes read back from a backend.
 */
export function exactSize(size: number, what: string, kind: 'input' | 'stored'): Transform {
  let seen = 0;
  const failure = (message: string): Error =>
    kind === 'stored' ? new IntegrityError(message) : new ObjectStorageError(message);
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > size) {
        callback(failure(`${what}: more than the expected ${size} bytes`));
        return;
      }
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      if (seen !== size) {
        callback(failure(`${what}: ${seen} bytes instead of the expected ${size}`));
        return;
      }
      callback();
    },
  });
}

export function assertValidSize(size: number, what: string): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new ObjectStorageError(`${what}: invalid size ${String(size)}; expected a non-negative integer`);
  }
}

export function assertValidRange(offset: number, length: number, what: string): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new ObjectStorageError(
      `${what}: invalid range offset ${String(offset)} length ${String(length)}; expected non-negative integers`,
    );
  }
}
