/**
 * A byte budget shared by concurrent streams (`MaxConcurrentInputSize`): bounds the bytes being
 * encrypted or decrypted at once. Requests are served first come, first served, so a large
 * request is not starved by small ones. A request never exceeds the limit: callers slice their
 * input into pieces of at most `limit` bytes, so an object larger than the limit still streams.
 */
export class ByteBudget {
  private used = 0;
  private peak = 0;
  private waits = 0;
  private readonly queue: { bytes: number; grant: () => void }[] = [];

  constructor(readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`byte budget must be a positive integer, got ${limit}`);
    }
  }

  /** Bytes currently reserved. */
  get inUse(): number {
    return this.used;
  }

  /** Highest `inUse` seen: for tests and benchmarks. */
  get peakInUse(): number {
    return this.peak;
  }

  /** How many requests had to wait for others to release: for tests and benchmarks. */
  get waitCount(): number {
    return this.waits;
  }

  /** Reserve `bytes` (1..limit); resolves to the function that releases them (call it once). */
  async acquire(bytes: number): Promise<() => void> {
    if (!Number.isSafeInteger(bytes) || bytes < 1 || bytes > this.limit) {
      throw new RangeError(`cannot reserve ${bytes} bytes from a budget of ${this.limit}`);
    }
    if (this.queue.length === 0 && this.used + bytes <= this.limit) {
      this.take(bytes);
    } else {
      this.waits += 1;
      await new Promise<void>((grant) => this.queue.push({ bytes, grant }));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      this.grantWaiting();
    };
  }

  private take(bytes: number): void {
    this.used += bytes;
    this.peak = Math.max(this.peak, this.used);
  }

  private grantWaiting(): void {
    for (let next = this.queue[0]; next && this.used + next.bytes <= this.limit; next = this.queue[0]) {
      this.queue.shift();
      this.take(next.bytes);
      next.grant();
    }
  }
}

/** Run `work` over `chunk` in slices of at most the budget's limit, each holding its reservation. */
export async function withBudget(
  budget: ByteBudget | undefined,
  chunk: Buffer,
  work: (slice: Buffer) => void,
): Promise<void> {
  if (budget === undefined) {
    work(chunk);
    return;
  }
  for (let offset = 0; offset < chunk.length; offset += budget.limit) {
    const slice = chunk.subarray(offset, offset + budget.limit);
    const release = await budget.acquire(slice.length);
    try {
      work(slice);
    } finally {
      release();
    }
  }
}

/**
 * Reserve the bytes of one chunk a stream is about to hold. A chunk larger than the whole budget
 * reserves all of it, so it is processed alone: the limit bounds concurrency, never object size.
 */
export async function reserveChunk(budget: ByteBudget | undefined, bytes: number): Promise<() => void> {
  if (budget === undefined || bytes === 0) return () => {};
  return budget.acquire(Math.min(bytes, budget.limit));
}
