import type { Readable } from 'node:stream';

export interface EachChunkOptions {
  /**
   * Hand over every chunk as the stream produced it. By default the chunks queued when the
   * handler is called come joined in one buffer (one allocation and copy of them all), which
   * suits a handler that waits per call (a socket write). A handler that copies or gathers each
   * chunk anyway (upload parts, a writev batch) is better off without that copy: an encrypt stream
   * pushes two pieces per 64 KiB chunk, so a whole object would be copied once more for nothing.
   */
  readonly asProduced?: boolean;
}

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
export function eachChunk(
  stream: Readable,
  onChunk: (chunk: Buffer) => void | Promise<void>,
  options: EachChunkOptions = {},
): Promise<void> {
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
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', fail);
      stream.off('close', onClose);
      // Flowing without a 'data' listener would drop what comes next: left paused, as it was.
      if (options.asProduced) stream.pause();
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
    /** Hands `chunk` over; true when the handler's promise is pending (it then calls `next`). */
    const handle = (chunk: Buffer, next: () => void): boolean => {
      let pending: void | Promise<void>;
      try {
        pending = onChunk(chunk);
      } catch (error) {
        settle(error);
        return false;
      }
      if (pending === undefined) return false;
      busy = true;
      pending.then(
        () => {
          busy = false;
          if (failure !== undefined) settle(failure.error);
          else next();
        },
        (error: unknown) => {
          busy = false;
          settle(error);
        },
      );
      return true;
    };
    /** Paused mode: `read()` joins what is queued. */
    function pump(): void {
      while (!busy && !settled) {
        const chunk = stream.read() as Buffer | null;
        if (chunk === null) {
          if (ended) settle();
          return;
        }
        handle(chunk, pump);
      }
    }
    /** Flowing mode: one 'data' event per chunk produced, paused while a handler's promise is pending. */
    function onData(chunk: Buffer): void {
      if (settled) return;
      if (handle(chunk, resumeData)) stream.pause();
    }
    function resumeData(): void {
      if (ended) settle();
      else stream.resume();
    }
    if (stream.errored) return settle(stream.errored);
    if (stream.readableEnded) return settle();
    if (stream.destroyed) return settle(prematureClose());
    stream.on('end', onEnd);
    stream.on('error', fail);
    stream.on('close', onClose);
    if (options.asProduced) {
      stream.on('data', onData);
    } else {
      stream.on('readable', pump);
      pump();
    }
  });
}

function prematureClose(): Error {
  return Object.assign(new Error('the stream closed before its end (premature close)'), {
    code: 'ERR_STREAM_PREMATURE_CLOSE',
  });
}
