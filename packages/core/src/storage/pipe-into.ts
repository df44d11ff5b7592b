import type { Readable, Writable } from 'node:stream';
import { releaseChunk, type ChunkReleasing } from './reusable-buffers.js';

/**
 * Marks a Writable whose write callback means it keeps no reference to the chunk any more (it has
 * encrypted, decrypted or copied it): `pipeInto` then hands each chunk back to its source once
 * written, so a source that reuses its buffers (the gateway's request bodies, file reads) can.
 * Never set it on a stream that passes its input chunks on (a PassThrough, a range slice).
 */
export const consumesChunks: unique symbol = Symbol('consumesChunks');

export interface ChunkConsuming {
  readonly [consumesChunks]: true;
}

/** Marks `stream` as consuming its input chunks (see `consumesChunks`); returns it. */
export function markConsumesChunks<T extends Writable>(stream: T): T & ChunkConsuming {
  return Object.assign(stream, { [consumesChunks]: true as const });
}

const consumes = (stream: Writable): boolean => (stream as Partial<ChunkConsuming>)[consumesChunks] === true;

/**
 * `source.pipe(target)`, each destroyed when the other fails or closes early: what
 * `stream.pipeline(source, target, callback)` does on the per-call data path, without its
 * AbortController (whose `abort()` builds a DOMException, stack included, for every call).
 * When `target` consumes its chunks (`consumesChunks`) and `source` takes chunks back
 * (`ChunkReleasing`), each chunk goes back to `source` once `target` has written it. Returns `target`.
 */
export function pipeInto<T extends Writable>(source: Readable, target: T): T {
  source.on('error', (error) => target.destroy(error));
  source.on('close', () => {
    if (!source.readableEnded && !target.destroyed)
      target.destroy(new Error('the source stream closed before its end'));
  });
  target.on('error', () => source.destroy());
  target.on('close', () => {
    if (!source.destroyed && !source.readableEnded) source.destroy();
  });
  const releasing = typeof (source as Partial<ChunkReleasing>).releaseChunk === 'function';
  if (!releasing || !consumes(target)) return source.pipe(target);
  source.on('data', (chunk: Buffer) => {
    const handBack = (error?: Error | null): void => {
      if (error == null) releaseChunk(source, chunk);
    };
    if (!target.write(chunk, handBack)) source.pause();
  });
  target.on('drain', () => source.resume());
  source.once('end', () => target.end());
  return target;
}
