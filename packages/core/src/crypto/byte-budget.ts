/**
 * A byte budget shared by concurrent streams (`MaxConcurrentInputSize`): bounds the bytes being
 * encrypted or decrypted at once. Requests are served first come, first served, so a large
 * request is not starved by small ones. A request never exceeds the limit: callers slice their
 * input into pieces of at most `limit` bytes, so an object larger than the limit still streams.
 *
 * Its counters live in shared memory, so the gateway's worker threads hold one budget between
 * them: a `ByteBudget` made on the memory of another (`budget.memory`) in any thread of the
 * process draws on the same bytes and the same queue.
 */
export class ByteBudget {
  private readonly cells: BigInt64Array;

  /** `memory`: that of a budget of the same limit to share (from `budget.memory`); new when absent. */
  constructor(
    readonly limit: number,
    memory?: SharedArrayBuffer,
  ) {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`byte budget must be a positive integer, got ${limit}`);
    }
    if (memory !== undefined && memory.byteLength !== CELLS * 8) {
      throw new RangeError(`byte budget memory must be ${CELLS * 8} bytes, got ${memory.byteLength}`);
    }
    this.cells = new BigInt64Array(memory ?? new SharedArrayBuffer(CELLS * 8));
  }

  /** The shared memory to hand to another thread, which makes `new ByteBudget(limit, memory)`. */
  get memory(): SharedArrayBuffer {
    return this.cells.buffer as SharedArrayBuffer;
  }

  /** Bytes currently reserved (by every thread sharing the budget). */
  get inUse(): number {
    return Number(Atomics.load(this.cells, USED));
  }

  /** Highest `inUse` seen: for tests and benchmarks. */
  get peakInUse(): number {
    return Number(Atomics.load(this.cells, PEAK));
  }

  /** How many requests had to wait for others to release: for tests and benchmarks. */
  get waitCount(): number {
    return Number(Atomics.load(this.cells, WAITS));
  }

  /**
   * Bytes kept idle for reuse (free buffers) by every thread sharing the budget. They count against
   * the limit beside the reservations, but a reservation never waits for them: the holders drop
   * them when asked (`requestTrim`).
   */
  get kept(): number {
    return Number(Atomics.load(this.cells, KEPT));
  }

  /** Counts `bytes` more as kept, if reserved plus kept bytes stay within the limit. */
  tryKeep(bytes: number): boolean {
    const amount = BigInt(bytes);
    const limit = BigInt(this.limit);
    for (;;) {
      const kept = Atomics.load(this.cells, KEPT);
      if (Atomics.load(this.cells, USED) + kept + amount > limit) return false;
      if (Atomics.compareExchange(this.cells, KEPT, kept, kept + amount) === kept) return true;
    }
  }

  /** No longer counts `bytes` as kept (taken back into use, or dropped). */
  unkeep(bytes: number): void {
    Atomics.sub(this.cells, KEPT, BigInt(bytes));
  }

  /** Asks every thread keeping bytes to drop what no longer fits beside the reservations. */
  requestTrim(): void {
    Atomics.add(this.cells, TRIMS, 1n);
    Atomics.notify(this.cells, TRIMS);
  }

  /** Resolves at the next `requestTrim` of any thread (a pending wait keeps no thread alive). */
  async nextTrimRequest(): Promise<void> {
    const wait = waitAsync(this.cells, TRIMS, Atomics.load(this.cells, TRIMS));
    if (wait.async) await wait.value;
  }

  /** Reserve `bytes` (1..limit); resolves to the function that releases them (call it once). */
  async acquire(bytes: number): Promise<() => void> {
    return this.reserve(bytes);
  }

  /**
   * `acquire` without a promise when the bytes are free at once and nobody is queued (the usual
   * case on the data path): the release function itself, or a promise of it.
   */
  reserve(bytes: number): (() => void) | Promise<() => void> {
    if (!Number.isSafeInteger(bytes) || bytes < 1 || bytes > this.limit) {
      throw new RangeError(`cannot reserve ${bytes} bytes from a budget of ${this.limit}`);
    }
    const amount = BigInt(bytes);
    // A ticket keeps the order of arrival across threads: only the one being served may take.
    const ticket = Atomics.add(this.cells, NEXT_TICKET, 1n);
    if (Atomics.load(this.cells, SERVING) === ticket && this.take(amount)) return this.granted(amount);
    return this.waitTurn(ticket, amount);
  }

  private async waitTurn(ticket: bigint, amount: bigint): Promise<() => void> {
    const cells = this.cells;
    Atomics.add(cells, WAITS, 1n);
    for (;;) {
      const seen = Atomics.load(cells, CHANGES);
      if (Atomics.load(cells, SERVING) === ticket && this.take(amount)) break;
      const wait = waitAsync(cells, CHANGES, seen);
      if (wait.async) await wait.value;
    }
    return this.granted(amount);
  }

  /** The next ticket's turn; returns the release of `amount`. */
  private granted(amount: bigint): () => void {
    const cells = this.cells;
    Atomics.add(cells, SERVING, 1n);
    this.changed();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      Atomics.sub(cells, USED, amount);
      this.changed();
    };
  }

  private take(amount: bigint): boolean {
    const limit = BigInt(this.limit);
    for (;;) {
      const used = Atomics.load(this.cells, USED);
      if (used + amount > limit) return false;
      if (Atomics.compareExchange(this.cells, USED, used, used + amount) !== used) continue;
      for (let peak = Atomics.load(this.cells, PEAK); peak < used + amount;) {
        const seen = Atomics.compareExchange(this.cells, PEAK, peak, used + amount);
        if (seen === peak) break;
        peak = seen;
      }
      return true;
    }
  }

  /** Wakes every waiter, in every thread, to look again. */
  private changed(): void {
    Atomics.add(this.cells, CHANGES, 1n);
    Atomics.notify(this.cells, CHANGES);
  }
}

/** `Atomics.waitAsync` (ES2024; Node has it, the project's TypeScript lib predates it). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      cells: BigInt64Array,
      index: number,
      value: bigint,
    ): { async: false; value: string } | { async: true; value: Promise<string> };
  }
).waitAsync.bind(Atomics);

// The shared cells (BigInt64: a budget may exceed 2^31 bytes).
const USED = 0;
const NEXT_TICKET = 1;
const SERVING = 2;
/** Bumped on every release and grant: what waiters wait on. */
const CHANGES = 3;
const PEAK = 4;
const WAITS = 5;
/** Bytes kept idle for reuse (see `kept`), and the trim requests their holders wait on. */
const KEPT = 6;
const TRIMS = 7;
const CELLS = 8;

/**
 * The budgets a gateway shares across its worker threads: `MaxConcurrentInputSize` (named by the
 * key that sets it) and `UploadBuffers` (the upload bodies every bucket client holds).
 */
export const PROCESS_BUDGETS = ['MaxConcurrentInputSize', 'UploadBuffers'] as const;
export type ProcessBudgetName = (typeof PROCESS_BUDGETS)[number];
export type ProcessBudgetMemories = Readonly<Record<ProcessBudgetName, SharedArrayBuffer>>;

let installed: ProcessBudgetMemories | undefined;

/** New memory for each process-wide budget: made once by the gateway, handed to every worker. */
export function createProcessBudgetMemories(): ProcessBudgetMemories {
  const memories = {} as Record<ProcessBudgetName, SharedArrayBuffer>;
  for (const name of PROCESS_BUDGETS) memories[name] = new SharedArrayBuffer(CELLS * 8);
  return memories;
}

/** Makes this thread's `processBudget` calls draw on the memories the gateway made. */
export function installProcessBudgets(memories: ProcessBudgetMemories): void {
  installed = memories;
}

/** The budget `name` sets: shared by every worker once installed, this thread's own otherwise. */
export function processBudget(name: ProcessBudgetName, limit: number): ByteBudget {
  return new ByteBudget(limit, installed?.[name]);
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

/** `reserveChunk` without a promise when the bytes are free at once (see `ByteBudget.reserve`). */
export function reserveChunkSoon(
  budget: ByteBudget | undefined,
  bytes: number,
): (() => void) | Promise<() => void> {
  if (budget === undefined || bytes === 0) return () => {};
  return budget.reserve(Math.min(bytes, budget.limit));
}

/**
 * `withBudget` that stays synchronous while reservations are granted at once: calls `done` when
 * `work` has run over every slice (or with its error), synchronously in the usual case. One
 * reservation covers as much of the chunk as the budget's limit allows (so one per chunk on the
 * usual path); `work` gets slices of at most `sliceBytes` within it.
 */
export function withBudgetSoon(
  budget: ByteBudget | undefined,
  chunk: Buffer,
  work: (slice: Buffer) => void,
  done: (error?: Error) => void,
  sliceBytes = Infinity,
): void {
  let offset = 0;
  /** Runs `work` from `offset` to `end` under `release`'s reservation; false once it failed. */
  const run = (end: number, release: () => void): boolean => {
    try {
      if (offset === 0 && end === chunk.length && end <= sliceBytes) work(chunk);
      else
        for (let at = offset; at < end; at += sliceBytes)
          work(chunk.subarray(at, Math.min(end, at + sliceBytes)));
    } catch (error) {
      release();
      done(error as Error);
      return false;
    }
    release();
    offset = end;
    return true;
  };
  const most = budget?.limit ?? Infinity;
  const step = (): void => {
    while (offset < chunk.length) {
      const end = Math.min(chunk.length, offset + most);
      const reserved = reserveChunkSoon(budget, end - offset);
      if (typeof reserved !== 'function') {
        reserved.then((release) => run(end, release) && step(), done);
        return;
      }
      if (!run(end, reserved)) return;
    }
    done();
  };
  step();
}
