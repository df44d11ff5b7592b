/**
 * Upload block buffers of one size, shared by a client's uploads: at most `capacity` exist at
 * once (acquire waits beyond that), and up to `retain` free ones are kept for reuse, so steady
 * uploads neither allocate nor leave garbage for the collector.
 */
export class BufferPool {
  private outstanding = 0;
  private readonly free: Buffer[] = [];
  private readonly waiters: ((buffer: Buffer) => void)[] = [];

  constructor(
    readonly bufferBytes: number,
    readonly capacity: number,
    readonly retain: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be >= 1, got ${capacity}`);
    }
  }

  /** Buffers handed out and not yet released. */
  get inUse(): number {
    return this.outstanding;
  }

  async acquire(): Promise<Buffer> {
    if (this.outstanding < this.capacity) {
      this.outstanding += 1;
      return this.free.pop() ?? Buffer.allocUnsafe(this.bufferBytes);
    }
    return new Promise<Buffer>((resolve) => this.waiters.push(resolve));
  }

  /** Give back a buffer from `acquire`; nothing may use it afterwards. */
  release(buffer: Buffer): void {
    const next = this.waiters.shift();
    if (next !== undefined) {
      next(buffer);
      return;
    }
    this.outstanding -= 1;
    if (this.free.length < this.retain) this.free.push(buffer);
  }
}
