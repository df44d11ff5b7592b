import type { Readable } from 'node:stream';

/**
 * Hands each chunk of `stream` to `onChunk` in order, waiting for the promise it returns (if any)
 * before the next one; resolves once the stream has ended and the last chunk is handled. Rejects
 * with the stream's error, with what `onChunk` throws or rejects with (the stream is then left to
 * the caller to destroy), or when the stream is destroyed before its end. Never settles while a
 * chunk is being handled: a caller that cleans up on failure (closes a file) cannot race with a
 * write still in flight.
 * The gateway's per-call loops use it instead of `for await`: no async generator, and no promise
 * per chunk unless `onChunk` makes one.
 */
export function eachChunk(stream: Readable, onChunk: (chunk: Buffer) => void | Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let busy = false;
    let ended = false;
    /** A failure of the stream that came while a chunk was being handled. */
    let failure: { error: unknown } | undefined;
    const settle = (error?: unknown) => {
      if (settled) return;
      settled = true;
      stream.off('readable', pump);
      stream.off('end', onEnd);
      stream.off('error', fail);
      stream.off('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const fail = (error: unknown) => {
      if (busy) failure ??= { error };
      else settle(error);
    };
    const onEnd = () => {
      ended = true;
      if (!busy) settle();
    };
    const onClose = () => {
      // 'end' comes before 'close' when all was read; else the stream was cut short.
      if (!ended) fail(stream.errored ?? prematureClose());
    };
    function pump(): void {
      while (!busy && !settled) {
        const chunk = stream.read() as Buffer | null;
        if (chunk === null) {
          if (ended) settle();
          return;
        }
        let pending: void | Promise<void>;
        try {
          pending = onChunk(chunk);
        } catch (error) {
          settle(error);
          return;
        }
        if (pending !== undefined) {
          busy = true;
          pending.then(
            () => {
              busy = false;
              if (failure !== undefined) settle(failure.error);
              else pump();
            },
            (error: unknown) => {
              busy = false;
              settle(error);
            },
          );
        }
      }
    }
    if (stream.errored) return settle(stream.errored);
    if (stream.readableEnded) return settle();
    if (stream.destroyed) return settle(prematureClose());
    stream.on('readable', pump);
    stream.on('end', onEnd);
    stream.on('error', fail);
    stream.on('close', onClose);
    pump();
  });
}

function prematureClose(): Error {
  return Object.assign(new Error('the stream closed before its end (premature close)'), {
    code: 'ERR_STREAM_PREMATURE_CLOSE',
  });
}
