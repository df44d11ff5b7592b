import type { Readable } from 'node:stream';
import { processBudget, type ByteBudget } from '../crypto/byte-budget.js';
import { ObjectStorageError } from '../errors.js';
import { eachChunk } from './each-chunk.js';
import { releaseChunk } from './reusable-buffers.js';

const MiB = 1024 * 1024;

/**
 * Upload bodies held in memory at once by the whole gateway process, across all bucket clients
 * and concurrent calls (Orthanc writes from many threads). Measured with 16 concurrent 256 MiB
 * creates: this much plus the process's base (~115 MiB with the supervising main thread and one
 * worker), socket buffers and collector slack stays under 256 MiB RSS for every provider
 * (48 MiB left Azure at 232 to 248 MiB with 32 MiB objects, 32 MiB at 228 to 231).
 */
export const DEFAULT_UPLOAD_MEMORY_BYTES = 32 * MiB;

let uploadBudget: ByteBudget | undefined;

/**
 * The process-wide upload budget every bucket client reserves from before it buffers a body.
 * One per process, so the bound holds however many clients exist; in shared memory once a
 * gateway worker has installed the process budgets, so it also holds across `GatewayWorkers`.
 * (Each thread keeps its own reuse pool; the bytes they keep count in the shared budget too.)
 */
export function uploadMemoryBudget(): ByteBudget {
  uploadBudget ??= processBudget('UploadBuffers', DEFAULT_UPLOAD_MEMORY_BYTES);
  return uploadBudget;
}

/**
 * Replace the process-wide upload budget (before any client is opened): for a budget whose
 * counters several threads share, or a test's small limit.
 */
export function setUploadMemoryBudget(budget: ByteBudget): void {
  uploadBudget = budget;
}

/**
 * Free part-sized buffers kept for reuse, per budget, so steady uploads neither allocate nor leave
 * garbage (freed buffers wait for the collector, which external memory does not hurry). They
 * count against the budget (`ByteBudget.kept`, shared by every thread): reserved bytes plus the
 * buffers every thread keeps stay within its limit, and a thread whose reservation finds them
 * over it drops its own and asks the others to drop theirs.
 */
class FreeBuffers {
  private readonly bySize = new Map<number, Buffer[]>();
  private bytes = 0;
  private watching = false;

  constructor(private readonly budget: ByteBudget) {}

  take(size: number): Buffer | undefined {
    const buffer = this.bySize.get(size)?.pop();
    if (buffer !== undefined) this.forget(size);
    return buffer;
  }

  /** Keep `buffer` if it fits beside what is reserved and kept; otherwise leave it to the collector. */
  keep(buffer: Buffer): void {
    if (!this.budget.tryKeep(buffer.length)) return;
    const list = this.bySize.get(buffer.length) ?? [];
    list.push(buffer);
    this.bySize.set(buffer.length, list);
    this.bytes += buffer.length;
    this.watch();
  }

  /** After a reservation: drop kept buffers until everything fits, ours first, then the others'. */
  trim(): void {
    this.dropWhileOver();
    if (this.overLimit()) this.budget.requestTrim();
  }

  private overLimit(): boolean {
    return this.budget.inUse + this.budget.kept > this.budget.limit;
  }

  private forget(size: number): void {
    this.bytes -= size;
    this.budget.unkeep(size);
  }

  private dropWhileOver(): void {
    for (const [size, list] of this.bySize) {
      while (list.length > 0 && this.overLimit()) {
        list.pop();
        this.forget(size);
      }
    }
  }

  /** While this thread keeps buffers, it answers the other threads' trim requests. */
  private watch(): void {
    if (this.watching) return;
    this.watching = true;
    void this.budget.nextTrimRequest().then(() => {
      this.watching = false;
      this.dropWhileOver();
      if (this.bytes > 0) this.watch();
    });
  }
}

const freeBuffers = new WeakMap<ByteBudget, FreeBuffers>();

function freeBuffersOf(budget: ByteBudget): FreeBuffers {
  let free = freeBuffers.get(budget);
  if (free === undefined) {
    free = new FreeBuffers(budget);
    freeBuffers.set(budget, free);
  }
  return free;
}

/**
 * Reserve `bytes` from `budget` (for memory a library buffers itself, e.g. an SDK's parts), or all
 * of it when `bytes` is larger (the holder then runs alone). Resolves to the release function.
 */
export async function reserveUploadMemory(budget: ByteBudget, bytes: number): Promise<() => void> {
  const release = await budget.acquire(Math.max(1, Math.min(bytes, budget.limit)));
  freeBuffersOf(budget).trim();
  return release;
}

/** A buffer reserved from `UploadBuffers`: give it back with `release` once the request is answered. */
export interface UploadBuffer {
  /** Exactly the bytes asked for (a view of a pooled buffer that may be larger). */
  readonly data: Buffer;
  release(): void;
}

/** Below this, buffers are allocated exactly and left to the collector (small allocations are cheap). */
const POOLED_FROM_BYTES = 64 * 1024;

/**
 * The capacity a buffer of `bytes` gets: rounded up to a quarter power of two (at most 25% more),
 * at most `partBytes`, so objects of similar sizes reuse each other's buffers. A fresh large
 * allocation costs far more than its bytes: the kernel maps and zeroes every page on first touch,
 * about half the cost of AES-GCM over the same bytes here.
 */
export function uploadBufferCapacity(bytes: number, partBytes: number): number {
  if (bytes < POOLED_FROM_BYTES || bytes >= partBytes) return bytes;
  const quarter = 2 ** (Math.ceil(Math.log2(bytes)) - 3);
  return Math.min(partBytes, Math.ceil(bytes / quarter) * quarter);
}

/**
 * Buffers for upload bodies (whole small objects, or parts), each reserved from a byte budget,
 * by default the process-wide one, before it is allocated: uploads wait rather than exceed it.
 * Buffers of a part and of size classes from 64 KiB up are reused; the reservation is the
 * capacity held, not just the bytes used.
 */
export class UploadBuffers {
  constructor(
    /** The largest buffer handed out (a part, or the largest single-request object). */
    readonly partBytes: number,
    readonly budget: ByteBudget = uploadMemoryBudget(),
  ) {
    if (!Number.isSafeInteger(partBytes) || partBytes < 1) {
      throw new RangeError(`upload buffers: invalid part size ${partBytes}`);
    }
  }

  /** Reserve a buffer of `bytes` (0 to `partBytes`), waiting while others hold the budget. */
  async acquire(bytes: number): Promise<UploadBuffer> {
    return this.reserve(bytes);
  }

  /** `acquire` without a promise when the budget has room at once (the usual case). */
  reserve(bytes: number): UploadBuffer | Promise<UploadBuffer> {
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > this.partBytes) {
      throw new RangeError(`upload buffers: cannot reserve ${bytes} bytes (parts are ${this.partBytes})`);
    }
    const capacity = uploadBufferCapacity(bytes, this.partBytes);
    const reserved = this.budget.reserve(Math.max(1, Math.min(capacity, this.budget.limit)));
    if (typeof reserved === 'function') return this.buffer(bytes, capacity, reserved);
    return reserved.then((release) => this.buffer(bytes, capacity, release));
  }

  /**
   * Account for `data`, memory its caller already holds and will not change until `giveBack` is
   * called, as an upload body of its length: the same reservation as `reserve(data.length)`, without
   * allocating or copying. `release` then frees the reservation and calls `giveBack`.
   */
  adopt(data: Buffer, giveBack: () => void): UploadBuffer | Promise<UploadBuffer> {
    const bytes = data.length;
    if (bytes > this.partBytes) {
      throw new RangeError(`upload buffers: cannot adopt ${bytes} bytes (parts are ${this.partBytes})`);
    }
    const capacity = uploadBufferCapacity(bytes, this.partBytes);
    const adopted = (releaseBudget: () => void): UploadBuffer => {
      freeBuffersOf(this.budget).trim();
      let released = false;
      return {
        data,
        release: () => {
          if (released) return;
          released = true;
          releaseBudget();
          giveBack();
        },
      };
    };
    const reserved = this.budget.reserve(Math.max(1, Math.min(capacity, this.budget.limit)));
    return typeof reserved === 'function' ? adopted(reserved) : reserved.then(adopted);
  }

  private buffer(bytes: number, capacity: number, releaseBudget: () => void): UploadBuffer {
    const free = freeBuffersOf(this.budget);
    free.trim();
    const pooled = capacity === this.partBytes || capacity >= POOLED_FROM_BYTES;
    const memory = (pooled ? free.take(capacity) : undefined) ?? Buffer.allocUnsafe(capacity);
    let released = false;
    return {
      data: capacity === bytes ? memory : memory.subarray(0, bytes),
      release: () => {
        if (released) return;
        released = true;
        releaseBudget();
        if (pooled) free.keep(memory);
      },
    };
  }
}

/**
 * Cut exactly `size` bytes of `body` into parts of `buffers.partBytes` (the last one shorter),
 * each filled into a reserved buffer and handed to `consume`, which owns it and must release it.
 * A chunk that is a whole part by itself is handed over as it is (`UploadBuffers.adopt`, same
 * reservation, no copy) and goes back to the body (`releaseChunk`) when the part is released:
 * streams only reuse a chunk's memory once it is handed back (see reusable-buffers.ts).
 * Fails when the body is shorter or longer than `size`. `what` names the object in errors.
 * The body is read chunk by chunk as it flows ('data' events), paused only while a buffer or
 * `consume` is awaited: async iteration would join chunks queued meanwhile into a new buffer.
 */
export async function forEachUploadPart(
  body: Readable,
  size: number,
  buffers: UploadBuffers,
  what: string,
  consume: (part: UploadBuffer, index: number) => Promise<void>,
): Promise<void> {
  const partBytes = buffers.partBytes;
  let index = 0;
  let total = 0;
  let current: UploadBuffer | undefined;
  let filled = 0;

  /** Copy `data` from `at` on into parts; a promise when it must wait (then it goes on by itself). */
  const take = (data: Buffer, at: number): Promise<void> | undefined => {
    while (at < data.length) {
      if (current === undefined) {
        const reserved = buffers.reserve(Math.min(partBytes, size - (total - data.length + at)));
        if (reserved instanceof Promise) {
          return reserved.then((buffer) => {
            current = buffer;
            return take(data, at);
          });
        }
        current = reserved;
      }
      const copied = data.copy(current.data, filled, at);
      filled += copied;
      at += copied;
      if (filled === current.data.length) {
        const full = current;
        current = undefined;
        filled = 0;
        const consumed = consume(full, index++);
        return consumed.then(() => take(data, at));
      }
    }
    return undefined;
  };

  try {
    if (size === 0) {
      const empty = await buffers.acquire(0);
      await consume(empty, index++);
    }
    await eachChunk(
      body,
      (chunk) => {
        const data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string); // a string-mode body
        const start = total;
        total += data.length;
        if (total > size)
          throw new ObjectStorageError(`${what}: the body has more than the announced ${size} bytes`);
        // A chunk that is exactly the next part (a whole small object, as the gateway receives it)
        // becomes that part as it is: the body reuses its memory only once the part is released.
        if (current === undefined && data.length > 0 && data.length === Math.min(partBytes, size - start)) {
          const adopted = buffers.adopt(data, () => releaseChunk(body, data));
          return adopted instanceof Promise
            ? adopted.then((part) => consume(part, index++))
            : consume(adopted, index++);
        }
        // Once copied, the chunk goes back to the body, which may reuse its memory.
        const copying = take(data, 0);
        if (copying === undefined) {
          releaseChunk(body, data);
          return undefined;
        }
        return copying.then(() => releaseChunk(body, data));
      },
      { asProduced: true },
    );
    if (total !== size) {
      throw new ObjectStorageError(`${what}: the body has ${total} bytes instead of the announced ${size}`);
    }
  } catch (error) {
    body.destroy();
    throw error;
  } finally {
    current?.release();
  }
}
