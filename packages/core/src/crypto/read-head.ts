import { Readable } from 'node:stream';

/**
 * Read the first `bytes` bytes of a stream (fewer if it ends first) without consuming them:
 * `body` yields the whole stream again, head included. Used to pick the format and read a
 * header before deciding how to decrypt.
 */
export async function readHead(stream: Readable, bytes: number): Promise<{ head: Buffer; body: Readable }> {
  const parts: Buffer[] = [];
  let length = 0;
  let ended = false;
  while (length < bytes && !ended) {
    const chunk = stream.read() as Buffer | null;
    if (chunk !== null) {
      parts.push(chunk);
      length += chunk.length;
      continue;
    }
    ended = await nextReadableOrEnd(stream);
  }
  // One part is the usual case (a whole first network read): no copy of it.
  const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  const head = all.subarray(0, Math.min(bytes, all.length));
  if (ended) return { head, body: Readable.from(all.length > 0 ? [all] : []) };
  stream.unshift(all);
  return { head, body: stream };
}

/** Resolves true at the end of the stream, false when more can be read; rejects on error. */
function nextReadableOrEnd(stream: Readable): Promise<boolean> {
  if (stream.readableEnded) return Promise.resolve(true);
  return new Promise((resolve, reject) => {
    const done = (ended: boolean, error?: Error) => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      if (error) reject(error);
      else resolve(ended);
    };
    const onReadable = () => done(false);
    const onEnd = () => done(true);
    const onError = (error: Error) => done(false, error);
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}
