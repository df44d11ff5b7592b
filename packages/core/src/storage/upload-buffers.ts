import type { Readable } from 'node:stream';
import { ByteBudget } from '../crypto/byte-budget.js';
import { ObjectStorageError } from '../errors.js';

const MiB = 1024 * 1024;

/**
 * Upload bodies held in memory at once by the whole gateway process, across all bucket clients
 * and concurrent calls (Orthanc writes from many threads). Measured with 16 concurrent 256 MiB
 * creates: this much plus the process's ~90 MiB base and collector slack stays under 256 MiB RSS.
 */
export const DEFAULT_UPLOAD_MEMORY_BYTES = 64 * MiB;

let processBudget: ByteBudget | undefined;

/**
 * The process-wide upload budget every bucket client reserves from before it buffers a body.
 * One per process, so the bound holds however many clients exist.
 */
export function uploadMemoryBudget(): ByteBudget {
  processBudget ??= new ByteBudget(DEFAULT_UPLOAD_MEMORY_BYTES);
  return processBudget;
}

/**
 * Replace the process-wide upload budget (before any client is opened): for a budget whose
 * counters several threads share, or a test's small limit.
 */
export function setUploadMemoryBudget(budget: ByteBudget): void {
  processBudget = budget;
}

/** Reserve `bytes` from `budget`, or all of it when `bytes` is larger (the holder then runs alone). */
export function reserveUploadMemory(budget: ByteBudget, bytes: number): Promise<() => void> {
  return budget.acquire(Math.max(1, Math.min(bytes, budget.limit)));
}

/** A buffer reserved from `UploadBuffers`: give it back with `release` once the request is answered. */
export interface UploadBuffer {
  /** Exactly the bytes reserved. */
  readonly data: Buffer;
  release(): void;
}

/**
 * Buffers for upload bodies (whole small objects, or parts), each reserved from a byte budget,
 * by default the process-wide one, before it is allocated: uploads wait rather than exceed it.
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
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > this.partBytes) {
      throw new RangeError(`upload buffers: cannot reserve ${bytes} bytes (parts are ${this.partBytes})`);
    }
    const release = await reserveUploadMemory(this.budget, bytes);
    return { data: Buffer.allocUnsafe(bytes), release };
  }
}

/**
 * Cut exactly `size` bytes of `body` into parts of `buffers.partBytes` (the last one shorter),
 * each filled into a reserved buffer and handed to `consume`, which owns it and must release it.
 * Fails when the body is shorter or longer than `size`. `what` names the object in errors.
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
  try {
    if (size === 0) {
      const empty = await buffers.acquire(0);
      await consume(empty, index++);
    }
    for await (const chunk of body as AsyncIterable<Buffer | string>) {
      let data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      total += data.length;
      if (total > size)
        throw new ObjectStorageError(`${what}: the body has more than the announced ${size} bytes`);
      while (data.length > 0) {
        current ??= await buffers.acquire(Math.min(partBytes, size - (total - data.length)));
        const take = Math.min(current.data.length - filled, data.length);
        data.copy(current.data, filled, 0, take);
        filled += take;
        data = data.subarray(take);
        if (filled === current.data.length) {
          const full = current;
          current = undefined;
          filled = 0;
          await consume(full, index++);
        }
      }
    }
    if (total !== size) {
      throw new ObjectStorageError(`${what}: the body has ${total} bytes instead of the announced ${size}`);
    }
  } finally {
    current?.release();
  }
}
