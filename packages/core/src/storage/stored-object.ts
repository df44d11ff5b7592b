import type { Readable } from 'node:stream';

/** Where one stored object is, as the backend keeps it (before decryption). */
export interface StoredObject {
  /** The file's path, or the object's name in its bucket or container. */
  readonly location: string;
  readonly locationKind: 'path' | 'object-name';
  /** The directory tree or the bucket, for messages (never holds a secret). */
  readonly container: string;
  /** Bytes stored (with the encryption overhead). */
  readonly size: number;
  /** The first bytes (up to HEAD_SIZE): an encryption format's magic and master key id. */
  readonly head: Buffer;
}

/** Two bytes of format magic and a uint32 LE master key id, as A1 (and later formats) begin. */
export const HEAD_SIZE = 6;

/** Reads up to `size` bytes from the start of a stream, then stops it. */
export async function readHead(body: Readable, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= size) break;
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, size);
}
