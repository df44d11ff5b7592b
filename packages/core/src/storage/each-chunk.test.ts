import { PassThrough, Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { eachChunk, type EachChunkOptions } from './each-chunk.js';

const listenerCount = (stream: Readable) =>
  ['readable', 'data', 'end', 'error', 'close'].reduce((sum, event) => sum + stream.listenerCount(event), 0);

const MODES: Array<[string, EachChunkOptions]> = [
  ['joined (default)', {}],
  ['as produced', { asProduced: true }],
];

describe.each(MODES)('eachChunk, %s', (_mode, options) => {
  const each = (stream: Readable, onChunk: (chunk: Buffer) => void | Promise<void>) =>
    eachChunk(stream, onChunk, options);

  it('hands chunks over in order, one at a time, and ends only after the last one is handled', async () => {
    const stream = new PassThrough();
    const seen: string[] = [];
    let handling = 0;
    let overlapped = false;
    const done = each(stream, async (chunk) => {
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
    await each(Readable.from(parts, { objectMode: false }), (chunk) => {
      sizes.push(chunk.length);
    });
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(6);
  });

  it('rejects with the error that destroys the stream midway', async () => {
    const stream = new PassThrough();
    const done = each(stream, () => {});
    stream.write('a');
    await nextTurn();
    stream.destroy(new Error('connection lost'));
    await expect(done).rejects.toThrow('connection lost');
  });

  it('settles on a failure only once the chunk being handled is done with', async () => {
    const stream = new PassThrough();
    let finishHandling: () => void = () => {};
    let settled = false;
    const done = each(stream, () => new Promise<void>((resolve) => (finishHandling = resolve))).finally(
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
    const done = each(stream, () => {});
    stream.write('a');
    await nextTurn();
    stream.destroy();
    await expect(done).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });

  it('rejects with what the handler throws or rejects with, and hands over nothing more', async () => {
    const thrown = new PassThrough();
    let calls = 0;
    const first = each(thrown, () => {
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
    const second = each(rejected, () => Promise.reject(new Error('disk full')));
    rejected.end('a');
    await expect(second).rejects.toThrow('disk full');
  });

  it('settles at once for a stream already ended, failed or destroyed', async () => {
    const ended = new PassThrough();
    ended.end();
    ended.resume();
    await new Promise((resolve) => ended.once('end', resolve));
    await expect(each(ended, () => {})).resolves.toBeUndefined();

    const failed = new PassThrough();
    failed.on('error', () => {});
    failed.destroy(new Error('gone'));
    await expect(each(failed, () => {})).rejects.toThrow('gone');

    const destroyed = new PassThrough();
    destroyed.destroy();
    await expect(each(destroyed, () => {})).rejects.toMatchObject({
      code: 'ERR_STREAM_PREMATURE_CLOSE',
    });
  });
});

describe('eachChunk chunk boundaries', () => {
  const pieces = () => ['x', 'yy', 'zzz'].map((text) => Buffer.from(text));
  /** Pushes its pieces at once, as an encrypt stream does for one input. */
  const pushingAtOnce = (parts: Buffer[]) =>
    new Readable({
      read() {
        for (const part of parts) this.push(part);
        this.push(null);
      },
    });

  it('hands each chunk over as produced with asProduced: the very buffers pushed, not a copy', async () => {
    const pushed = pieces();
    const seen: Buffer[] = [];
    await eachChunk(
      pushingAtOnce(pushed),
      async (chunk) => {
        seen.push(chunk);
        await nextTurn();
      },
      { asProduced: true },
    );
    expect(seen).toHaveLength(3);
    seen.forEach((chunk, i) => expect(chunk).toBe(pushed[i]));
  });

  it('joins what is queued by default', async () => {
    const sizes: number[] = [];
    await eachChunk(pushingAtOnce(pieces()), (chunk) => {
      sizes.push(chunk.length);
    });
    expect(sizes).toEqual([6]);
  });

  it('leaves the stream paused when the handler fails, so nothing more flows past', async () => {
    const stream = new PassThrough();
    const done = eachChunk(
      stream,
      () => {
        throw new Error('too long');
      },
      { asProduced: true },
    );
    stream.write('a');
    await expect(done).rejects.toThrow('too long');
    stream.write('b');
    await nextTurn();
    expect(stream.isPaused()).toBe(true);
    expect(stream.read()?.toString()).toBe('b');
  });
});
