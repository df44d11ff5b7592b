import type { Readable } from 'node:stream';
import { ObjectStorageError } from '@orthanc-object-storage/core';

/** The whole of a small body, which must be exactly `size` bytes (memory is bounded by `size`). */
export async function readFully(body: Readable, size: number, what: string): Promise<Buffer> {
  const data = Buffer.allocUnsafe(size);
  let filled = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (filled + chunk.length > size) {
      body.destroy();
      throw new ObjectStorageError(`${what}: the body has more than the announced ${size} bytes`);
    }
    chunk.copy(data, filled);
    filled += chunk.length;
  }
  if (filled !== size) {
    throw new ObjectStorageError(`${what}: the body has ${filled} bytes instead of the announced ${size}`);
  }
  return data;
}
