import type { Readable } from 'node:stream';
import { ByteBudget } from '../crypto/byte-budget.js';
import { ObjectStorageError } from '../errors.js';

/** A buffer reserved from `UploadBuffers`: give it back with `release` once the request is answered. */
export interface UploadBuffer {
  /** Exactly the bytes reserved. */
  readonly data: Buffer;
  release(): void;
}

/**
 * The upload memory of one bucket client, shared by all its concurrent uploads (Orthanc writes
 * from many threads at once): every buffer an upload holds, whole small object or multipart part,
 * is reserved here first, so the client never holds more than `limitBytes` of upload bodies
 * whatever the number of calls. Part-sized buffers are reused, so steady uploads leave no garbage.
 */
export class UploadBuffers {
  private readonly budget: ByteBudget;
  private readonly free: Buffer[] = [];

  constructor(
    /** Upload bytes held at once across the client. At least one part. */
    readonly limitBytes: number,
    /** Size of a multipart part; buffers of this size are pooled. */
    readonly partBytes: number,
  ) {
    if (!Number.isSafeInteger(partBytes) || partBytes < 1 || limitBytes < partBytes) {
      throw new RangeError(`upload buffers: limit ${limitBytes} must hold at least one part of ${partBytes}`);
    }
    this.budget = new ByteBudget(limitBytes);
  }

  /** Bytes reserved now, and the most ever reserved at once: for tests and benchmarks. */
  get inUse(): number {
    return this.budget.inUse;
  }

  get peakInUse(): number {
    return this.budget.peakInUse;
  }

  /**
   * Reserve `bytes` (1 to `partBytes`) that a library buffers itself (e.g. an SDK's resumable
   * upload chunk), waiting while others hold the budget. Call the result once to release them.
   */
  reserve(bytes: number): Promise<() => void> {
    if (!Number.isSafeInteger(bytes) || bytes < 1 || bytes > this.partBytes) {
      throw new RangeError(`upload buffers: cannot reserve ${bytes} bytes (parts are ${this.partBytes})`);
    }
    return this.budget.acquire(bytes);
  }

  /** Reserve a buffer of `bytes` (0 to `partBytes`), waiting while others hold the budget. */
  async acquire(bytes: number): Promise<UploadBuffer> {
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > this.partBytes) {
      throw new RangeError(`upload buffers: cannot reserve ${bytes} bytes (parts are ${this.partBytes})`);
    }
    const releaseBudget = await this.budget.acquire(Math.max(bytes, 1));
    const pooled = bytes === this.partBytes;
    // Free pooled buffers and reserved bytes together stay within the limit.
    while (
      this.free.length > 0 &&
      this.budget.inUse + (this.free.length - (pooled ? 1 : 0)) * this.partBytes > this.limitBytes
    )
      this.free.pop();
    const whole = pooled
      ? (this.free.pop() ?? Buffer.allocUnsafe(this.partBytes))
      : Buffer.allocUnsafe(bytes);
    let released = false;
    return {
      data: whole.subarray(0, bytes),
      release: () => {
        if (released) return;
        released = true;
        releaseBudget();
        if (pooled && this.budget.inUse + (this.free.length + 1) * this.partBytes <= this.limitBytes) {
          this.free.push(whole);
        }
      },
    };
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
