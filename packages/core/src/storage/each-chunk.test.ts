import { PassThrough, Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { eachChunk } from './each-chunk.js';

const listenerCount = (stream: Readable) =>
  ['readable', 'end', 'error', 'close'].reduce((sum, event) => sum + stream.listenerCount(event), 0);

describe('eachChunk', () => {
  it('hands chunks over in order, one at a time, and ends only after the last one is handled', async () => {
    const stream = new PassThrough();
    const seen: string[] = [];
    let handling = 0;
    let overlapped = false;
    const done = eachChunk(stream, async (chunk) => {
      if (++handling > 1) overlapped = true;
      await nextTurn();
      seen.push(chunk.toString());
      handling--;
    });
    stream.write('a');
    await nextTurn();
    stream.write('b');
    stream.end('c'); // 'end' may come while a chunk is still being handled
    await done;
    expect(seen.join('')).toBe('abc');
    expect(overlapped).toBe(false);
    expect(listenerCount(stream)).toBe(0);
  });

  it('calls a synchronous handler without waiting, for every chunk', async () => {
    const parts = ['x', 'yy', 'zzz'].map((s) => Buffer.from(s));
    const sizes: number[] = [];
    await eachChunk(Readable.from(parts, { objectMode: false }), (chunk) => {
      sizes.push(chunk.length);
    });
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(6);
  });

  it('rejects with the error that destroys the stream midway', async () => {
    const stream = new PassThrough();
    const done = eachChunk(stream, () => {});
    stream.write('a');
    await nextTurn();
    stream.destroy(new Error('connection lost'));
    await expect(done).rejects.toThrow('connection lost');
  });

  it('settles on a failure only once the chunk being handled is done with', async () => {
    const stream = new PassThrough();
    let finishHandling: () => void = () => {};
    let settled = false;
    const done = eachChunk(stream, () => new Promise<void>((resolve) => (finishHandling = resolve))).finally(
      () => (settled = true),
    );
    done.catch(() => {});
    stream.write('a');
    await nextTurn();
    stream.destroy(new Error('connection lost'));
    await nextTurn();
    await nextTurn();
    expect(settled).toBe(false); // e.g. a write to the file is still in flight
    finishHandling();
    await expect(done).rejects.toThrow('connection lost');
  });

  it('rejects when the stream is destroyed before its end without an error', async () => {
    const stream = new PassThrough();
    const done = eachChunk(stream, () => {});
    stream.write('a');
    await nextTurn();
    stream.destroy();
    await expect(done).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });

  it('rejects with what the handler throws or rejects with, and hands over nothing more', async () => {
    const thrown = new PassThrough();
    let calls = 0;
    const first = eachChunk(thrown, () => {
      calls++;
      throw new Error('too long');
    });
    thrown.write('a');
    thrown.write('b');
    await expect(first).rejects.toThrow('too long');
    await nextTurn();
    expect(calls).toBe(1);
    expect(listenerCount(thrown)).toBe(0);

    const rejected = new PassThrough();
    const second = eachChunk(rejected, () => Promise.reject(new Error('disk full')));
    rejected.end('a');
    await expect(second).rejects.toThrow('disk full');
  });

  it('settles at once for a stream already ended, failed or destroyed', async () => {
    const ended = new PassThrough();
    ended.end();
    ended.resume();
    await new Promise((resolve) => ended.once('end', resolve));
    await expect(eachChunk(ended, () => {})).resolves.toBeUndefined();

    const failed = new PassThrough();
    failed.on('error', () => {});
    failed.destroy(new Error('gone'));
    await expect(eachChunk(failed, () => {})).rejects.toThrow('gone');

    const destroyed = new PassThrough();
    destroyed.destroy();
    await expect(eachChunk(destroyed, () => {})).rejects.toMatchObject({
      code: 'ERR_STREAM_PREMATURE_CLOSE',
    });
  });
});
