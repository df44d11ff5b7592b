import type { Readable, Writable } from 'node:stream';

/**
 * `source.pipe(target)`, each destroyed when the other fails or closes early: what
 * `stream.pipeline(source, target, callback)` does on the per-call data path, without its
 * AbortController (whose `abort()` builds a DOMException, stack included, for every call).
 * Returns `target`.
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
  return source.pipe(target);
}
