import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';

const BLOCK = 16;
const CHUNK = 64 * 1024;

function keyOf(seed: number): Buffer {
  return createHash('sha256').update(`conformance-pattern-${seed}`).digest();
}

function counterBlock(blockIndex: number): Buffer {
  const iv = Buffer.alloc(BLOCK);
  iv.writeBigUInt64BE(BigInt(blockIndex), 8);
  return iv;
}

/**
 * Deterministic pseudo-random bytes: the AES-256-CTR keystream of a key derived from `seed`.
 * Any slice can be computed on its own, so tests check ranges without holding the object.
 */
export function patternBytes(seed: number, offset: number, length: number): Buffer {
  const firstBlock = Math.floor(offset / BLOCK);
  const skip = offset - firstBlock * BLOCK;
  const cipher = createCipheriv('aes-256-ctr', keyOf(seed), counterBlock(firstBlock));
  return cipher.update(Buffer.alloc(skip + length)).subarray(skip);
}

/** `size` bytes of the pattern for `seed`, streamed in 64 KiB chunks. */
export function patternStream(size: number, seed: number): Readable {
  const cipher = createCipheriv('aes-256-ctr', keyOf(seed), counterBlock(0));
  const zeros = Buffer.alloc(CHUNK);
  let produced = 0;
  return new Readable({
    read() {
      if (produced >= size) {
        this.push(null);
        return;
      }
      const length = Math.min(CHUNK, size - produced);
      produced += length;
      this.push(cipher.update(length === CHUNK ? zeros : zeros.subarray(0, length)));
    },
  });
}

/** Hex sha256 of everything a stream yields; fails when the stream fails. */
export async function sha256OfStream(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Hex sha256 and byte count of everything a stream yields. */
export async function digestOfStream(stream: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** A whole stream in memory: for small ranges only. */
export async function bufferOfStream(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Everything a stream yields, as one buffer: for small test objects only. */
export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** `size` bytes of the pattern for `seed` in one buffer: for small test objects only. */
export function patternBuffer(size: number, seed = 1): Buffer {
  return patternBytes(seed, 0, size);
}
