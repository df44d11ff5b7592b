import { Readable } from 'node:stream';
import type { Socket } from 'node:net';

/** Pull-style reads over a socket, pausing it when too much is buffered (backpressure). */
export class SocketReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly highWaterMark = 256 * 1024,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered >= this.highWaterMark) socket.pause();
      this.notify();
    });
    socket.on('end', () => this.finish());
    socket.on('close', () => this.finish());
    socket.on('error', (error) => {
      this.failure = error;
      this.notify();
    });
  }

  private finish(): void {
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Up to `max` bytes (at least one), or null once the peer has closed and nothing is left. */
  async read(max: number): Promise<Buffer | null> {
    while (this.buffered === 0) {
      if (this.failure) throw this.failure;
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    const first = this.chunks[0]!;
    let result: Buffer;
    if (first.length <= max) {
      this.chunks.shift();
      result = first;
    } else {
      result = first.subarray(0, max);
      this.chunks[0] = first.subarray(max);
    }
    this.buffered -= result.length;
    if (this.buffered < this.highWaterMark && this.socket.isPaused() && !this.ended) this.socket.resume();
    return result;
  }

  /** Exactly `size` bytes; null on a clean close before the first byte; throws on a close midway. */
  async readExactly(size: number): Promise<Buffer | null> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < size) {
      const chunk = await this.read(size - got);
      if (chunk === null) {
        if (got === 0) return null;
        throw new Error(`connection closed after ${got} of ${size} bytes`);
      }
      parts.push(chunk);
      got += chunk.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
  }

  /** A stream of the next `size` bytes, for a request body. */
  body(size: number): RequestBody {
    return new RequestBody(this, size);
  }
}

/** The body of a create request: exactly `size` bytes pulled from the socket as the consumer asks. */
export class RequestBody extends Readable {
  private remainingBytes: number;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly reader: SocketReader,
    readonly size: number,
  ) {
    super({ highWaterMark: 256 * 1024 });
    this.remainingBytes = size;
  }

  get remaining(): number {
    return this.remainingBytes;
  }

  override _read(): void {
    if (this.remainingBytes === 0) {
      this.push(null);
      return;
    }
    this.pending = this.reader.read(Math.min(this.remainingBytes, 1024 * 1024)).then(
      (chunk) => {
        this.pending = undefined;
        if (chunk === null) {
          this.destroy(
            new Error(`connection closed after ${this.size - this.remainingBytes} of ${this.size} bytes`),
          );
          return;
        }
        this.remainingBytes -= chunk.length;
        this.push(chunk);
        if (this.remainingBytes === 0) this.push(null);
      },
      (error: unknown) => {
        this.pending = undefined;
        this.destroy(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  /** Discards what the consumer did not read, so the next request starts at the right byte. */
  async discardRest(): Promise<void> {
    if (!this.destroyed) this.destroy();
    await this.pending; // bytes it pulls are counted; those buffered in the stream are already off the socket
    while (this.remainingBytes > 0) {
      const next = await this.reader.read(Math.min(this.remainingBytes, 1024 * 1024));
      if (next === null) throw new Error('connection closed while discarding a request body');
      this.remainingBytes -= next.length;
    }
  }
}
