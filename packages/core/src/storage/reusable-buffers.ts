// Reusable 1 MiB buffers for the gateway's hot path (request bodies received from the shim, file
// reads sent back to it). A fresh large Buffer costs far more than its bytes (Node zero-fills it
// and its external memory drives V8's major GCs): measured here, ~140 us per 0.5 MB, against a
// few us to reuse one.
//
// Ownership is explicit: a stream whose chunks may live in such buffers lets its consumer hand a
// chunk back (`releaseChunk`) once it will never touch it again; only then is the buffer reused.
// A consumer that does not know the protocol never releases, and the buffer is simply collected.

/** Size of each reusable buffer: the gateway's unit of file writes and reads. */
export const REUSABLE_BUFFER_SIZE = 1024 * 1024;
/** Free buffers kept per thread: bounds the memory held when idle (8 MiB). */
const MAX_FREE = 8;

const free: Buffer[] = [];
/** Buffers handed out and not yet given back: only these may be recycled. */
const lent = new WeakSet<ArrayBufferLike>();

/** A 1 MiB buffer, reused when one is free; its content is undefined (never zeroed). */
export function takeReusableBuffer(): Buffer {
  const buffer = free.pop() ?? Buffer.allocUnsafeSlow(REUSABLE_BUFFER_SIZE);
  lent.add(buffer.buffer);
  return buffer;
}

/** Gives back a buffer (or a view of one) taken with takeReusableBuffer; others are ignored. */
export function recycleReusableBuffer(view: Buffer): void {
  if (!lent.delete(view.buffer)) return;
  if (free.length < MAX_FREE) free.push(Buffer.from(view.buffer, 0, REUSABLE_BUFFER_SIZE));
}

/** Free buffers held now (for tests). */
export function freeReusableBuffers(): number {
  return free.length;
}

/** A stream whose consumer may hand chunks back once it is done with them. */
export interface ChunkReleasing {
  releaseChunk(chunk: Buffer): void;
}

/**
 * Tells `stream` that `chunk`, which it produced, will never be read again by its consumer (it
 * has been written out). Does nothing for streams that do not reuse their buffers.
 */
export function releaseChunk(stream: unknown, chunk: Buffer): void {
  (stream as Partial<ChunkReleasing>).releaseChunk?.(chunk);
}
