import { reserveChunkSoon, type ByteBudget } from './byte-budget.js';

/**
 * Cuts a byte stream into the records of a chunked format (C1's plaintext chunks when
 * encrypting, its ciphertext-and-tag records when decrypting) and hands each whole record on.
 * From a record's first byte until it has been handled it holds twice its size of the
 * `MaxConcurrentInputSize` budget (the record and its output). A record that lies whole in one
 * input is handed on without a copy; others are gathered in one buffer, reused: the handler
 * writes its output elsewhere.
 */
export class RecordCutter {
  private reserved = false;
  private release: () => void = () => {};
  private buffer: Buffer | undefined;
  private filled = 0;

  constructor(private readonly budget: ByteBudget | undefined) {}

  /**
   * Hands every record `input` completes to `handle`. `nextSize` gives the size of the next
   * record, or undefined to stop (it may throw). Synchronous unless the budget makes it wait, so
   * there is no promise per input on the usual path; calls `done` once, with the first error thrown.
   */
  take(
    input: Buffer,
    nextSize: () => number | undefined,
    handle: (record: Buffer) => void,
    done: (error?: Error) => void,
  ): void {
    this.takeFrom(input, 0, nextSize, handle, done);
  }

  private takeFrom(
    input: Buffer,
    at: number,
    nextSize: () => number | undefined,
    handle: (record: Buffer) => void,
    done: (error?: Error) => void,
  ): void {
    try {
      while (at < input.length) {
        const size = nextSize();
        if (size === undefined) break;
        if (!this.reserved) {
          const reserved = reserveChunkSoon(this.budget, 2 * size);
          if (typeof reserved !== 'function') {
            reserved.then((release) => {
              this.release = release;
              this.reserved = true;
              this.takeFrom(input, at, nextSize, handle, done);
            }, done);
            return;
          }
          this.release = reserved;
          this.reserved = true;
        }
        if (this.filled === 0 && input.length - at >= size) {
          this.handled(handle, input.subarray(at, at + size));
          at += size;
          continue;
        }
        if (this.buffer === undefined || this.buffer.length < size) this.buffer = Buffer.allocUnsafe(size);
        const taken = input.copy(
          this.buffer,
          this.filled,
          at,
          Math.min(input.length, at + size - this.filled),
        );
        this.filled += taken;
        at += taken;
        if (this.filled === size) {
          this.filled = 0;
          this.handled(handle, this.buffer.subarray(0, size));
        }
      }
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  }

  /** Gives back the budget held for a record under way (the stream is being destroyed). */
  releaseBudget(): void {
    this.reserved = false;
    this.release();
  }

  private handled(handle: (record: Buffer) => void, record: Buffer): void {
    handle(record);
    this.releaseBudget();
  }
}
