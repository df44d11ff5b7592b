import { Readable } from 'node:stream';
import { ByteBudget } from '../crypto/byte-budget.js';
import {
  forEachUploadPart,
  reserveUploadMemory,
  setUploadMemoryBudget,
  uploadBufferCapacity,
  UploadBuffers,
  uploadMemoryBudget,
} from './upload-buffers.js';

const KiB = 1024;

function body(size: number, chunk = 3000): Readable {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 7) & 0xff;
  const chunks: Buffer[] = [];
  for (let at = 0; at < size; at += chunk) chunks.push(data.subarray(at, at + chunk));
  return Readable.from(chunks);
}

describe('UploadBuffers', () => {
  it('never holds more than its limit across concurrent uploads, and they all complete', async () => {
    const buffers = new UploadBuffers(16 * KiB, new ByteBudget(4 * 16 * KiB));
    let held = 0;
    let peakHeld = 0;
    const sizes = [100 * KiB, 5 * KiB, 64 * KiB, 0, 33 * KiB + 1, 16 * KiB, 90 * KiB, 1];
    const received = await Promise.all(
      sizes.map(async (size) => {
        let total = 0;
        await forEachUploadPart(body(size), size, buffers, `object of ${size}`, async (part) => {
          held += part.data.length;
          peakHeld = Math.max(peakHeld, held);
          await new Promise((resolve) => setTimeout(resolve, 2));
          for (let i = 0; i < part.data.length; i++) {
            if (part.data[i] !== (((total + i) * 7) & 0xff))
              throw new Error(`byte ${total + i} of ${size} differs`);
          }
          total += part.data.length;
          held -= part.data.length;
          part.release();
        });
        return total;
      }),
    );
    expect(received).toEqual(sizes);
    expect(buffers.budget.peakInUse).toBeLessThanOrEqual(4 * 16 * KiB);
    expect(peakHeld).toBeLessThanOrEqual(4 * 16 * KiB);
    expect(buffers.budget.inUse).toBe(0);
  });

  it('refuses a body shorter or longer than announced, naming the object, and releases what it held', async () => {
    const buffers = new UploadBuffers(16 * KiB, new ByteBudget(64 * KiB));
    const consume = async (part: { release(): void }) => part.release();
    await expect(forEachUploadPart(body(40 * KiB), 50 * KiB, buffers, 'object x', consume)).rejects.toThrow(
      /object x: the body has 40960 bytes instead of the announced 51200/,
    );
    await expect(forEachUploadPart(body(40 * KiB), 30 * KiB, buffers, 'object y', consume)).rejects.toThrow(
      /object y: the body has more than the announced 30720 bytes/,
    );
    expect(buffers.budget.inUse).toBe(0);
  });

  it('shares one process-wide budget between clients, and a reservation above it waits for all of it', async () => {
    const shared = new ByteBudget(48 * KiB);
    setUploadMemoryBudget(shared);
    const a = new UploadBuffers(32 * KiB);
    const b = new UploadBuffers(16 * KiB);
    expect(a.budget).toBe(uploadMemoryBudget());
    expect(b.budget).toBe(shared);
    const first = await a.acquire(32 * KiB);
    const second = await b.acquire(16 * KiB);
    let third = false;
    const waiting = a.acquire(1).then((buffer) => {
      third = true;
      return buffer;
    });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(third).toBe(false);
    expect(shared.inUse).toBe(48 * KiB);
    first.release();
    (await waiting).release();
    second.release();
    const all = await reserveUploadMemory(shared, 1024 * KiB);
    expect(shared.inUse).toBe(48 * KiB);
    all();
    expect(shared.inUse).toBe(0);
  });

  it('reuses part-sized buffers, and keeps free ones only while they fit beside what is reserved', async () => {
    const budget = new ByteBudget(48 * KiB);
    const buffers = new UploadBuffers(16 * KiB, budget);
    const first = await buffers.acquire(16 * KiB);
    const memory = first.data.buffer;
    first.release();
    const again = await buffers.acquire(16 * KiB);
    expect(again.data.buffer).toBe(memory);
    again.release();
    // Another reservation leaves no room for the kept part: it is dropped.
    const others = await reserveUploadMemory(budget, 40 * KiB);
    others();
    const fresh = await buffers.acquire(16 * KiB);
    expect(fresh.data.buffer).not.toBe(memory);
    fresh.release();
    expect(budget.inUse).toBe(0);
  });

  it('rounds large buffers up to a size class, reserves that capacity, and reuses it for objects of similar size', async () => {
    expect(uploadBufferCapacity(559_288, 5 * 1024 * KiB)).toBe(640 * KiB);
    expect(uploadBufferCapacity(512 * KiB, 5 * 1024 * KiB)).toBe(512 * KiB);
    expect(uploadBufferCapacity(512 * KiB + 1, 5 * 1024 * KiB)).toBe(640 * KiB);
    expect(uploadBufferCapacity(4 * 1024 * KiB + 1, 5 * 1024 * KiB)).toBe(5 * 1024 * KiB);
    expect(uploadBufferCapacity(1000, 5 * 1024 * KiB)).toBe(1000);
    const budget = new ByteBudget(2 * 1024 * KiB);
    const buffers = new UploadBuffers(1024 * KiB, budget);
    const first = await buffers.acquire(559_288);
    expect(first.data.length).toBe(559_288);
    expect(budget.inUse).toBe(640 * KiB);
    const memory = first.data.buffer;
    first.release();
    expect(budget.inUse).toBe(0);
    const similar = await buffers.acquire(600_000);
    expect(similar.data.length).toBe(600_000);
    expect(similar.data.buffer).toBe(memory);
    const other = await buffers.acquire(300 * KiB);
    expect(other.data.buffer).not.toBe(memory);
    similar.release();
    other.release();
    // Bytes of an earlier object stay behind in a reused buffer: every part is filled whole before use.
    let seen = 0;
    await forEachUploadPart(body(559_288), 559_288, buffers, 'object z', async (part) => {
      for (let i = 0; i < part.data.length; i++) {
        if (part.data[i] !== ((i * 7) & 0xff)) throw new Error(`byte ${i} differs`);
      }
      seen += part.data.length;
      part.release();
    });
    expect(seen).toBe(559_288);
    expect(budget.inUse).toBe(0);
  });

  it('fails on a body that errors or closes before its end, and releases what it held', async () => {
    const buffers = new UploadBuffers(16 * KiB, new ByteBudget(64 * KiB));
    const consume = async (part: { release(): void }) => part.release();
    const failing = new Readable({ read() {} });
    failing.push(Buffer.alloc(20 * KiB));
    setTimeout(() => failing.destroy(new Error('connection lost')), 5);
    await expect(forEachUploadPart(failing, 40 * KiB, buffers, 'object e', consume)).rejects.toThrow(
      /connection lost/,
    );
    const closing = new Readable({ read() {} });
    closing.push(Buffer.alloc(5 * KiB));
    setTimeout(() => closing.destroy(), 5);
    await expect(forEachUploadPart(closing, 40 * KiB, buffers, 'object c', consume)).rejects.toThrow(
      /closed before its end/,
    );
    expect(buffers.budget.inUse).toBe(0);
  });

  it('hands every chunk back to a body that reuses its memory, once copied', async () => {
    const buffers = new UploadBuffers(16 * KiB, new ByteBudget(64 * KiB));
    const source = body(40 * KiB, 7000);
    const released: number[] = [];
    Object.assign(source, { releaseChunk: (chunk: Buffer) => released.push(chunk.length) });
    const parts: number[] = [];
    await forEachUploadPart(source, 40 * KiB, buffers, 'object r', async (part) => {
      parts.push(part.data.length);
      part.release();
    });
    expect(parts).toEqual([16 * KiB, 16 * KiB, 8 * KiB]);
    expect(released.reduce((a, b) => a + b, 0)).toBe(40 * KiB);
  });

  it('hands a chunk that is a whole part over as it is, with the same reservation, and takes it back only on release', async () => {
    const buffers = new UploadBuffers(16 * KiB, new ByteBudget(64 * KiB));
    const source = body(40 * KiB, 16 * KiB);
    const events: string[] = [];
    Object.assign(source, { releaseChunk: (chunk: Buffer) => events.push(`back ${chunk.length}`) });
    const held: Array<{ data: Buffer; release(): void }> = [];
    const seen: Buffer[] = [];
    source.on('data', (chunk: Buffer) => seen.push(chunk)); // before any flows: sees every chunk
    await forEachUploadPart(source, 40 * KiB, buffers, 'object a', async (part) => {
      events.push(`part ${part.data.length}`);
      held.push(part);
    });
    // Every chunk was exactly the next part (the last one shorter): no copy, nothing back yet.
    expect(held.map((part) => part.data)).toEqual(seen);
    expect(held.every((part, i) => part.data === seen[i])).toBe(true);
    expect(events).toEqual([`part ${16 * KiB}`, `part ${16 * KiB}`, `part ${8 * KiB}`]);
    expect(buffers.budget.inUse).toBe(16 * KiB + 16 * KiB + uploadBufferCapacity(8 * KiB, 16 * KiB));
    for (const part of held) part.release();
    held[0]!.release(); // twice: no second hand-back
    expect(events.slice(3)).toEqual([`back ${16 * KiB}`, `back ${16 * KiB}`, `back ${8 * KiB}`]);
    expect(buffers.budget.inUse).toBe(0);
  });

  it('waits for the budget before handing a whole-part chunk over, as for a copy', async () => {
    const buffers = new UploadBuffers(16 * KiB, new ByteBudget(16 * KiB));
    const blocker = await buffers.acquire(16 * KiB);
    let handed = false;
    const upload = forEachUploadPart(
      body(16 * KiB, 16 * KiB),
      16 * KiB,
      buffers,
      'object w',
      async (part) => {
        handed = true;
        part.release();
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(handed).toBe(false);
    blocker.release();
    await upload;
    expect(handed).toBe(true);
    expect(buffers.budget.inUse).toBe(0);
  });
});
