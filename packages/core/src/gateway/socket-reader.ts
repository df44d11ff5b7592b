import { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import {
  REUSABLE_BUFFER_SIZE,
  recycleReusableBuffer,
  takeReusableBuffer,
  type ChunkReleasing,
} from '../storage/reusable-buffers.js';

/** Bytes received outside a body (headers, names, forwarded calls) land in a buffer this size. */
const STAGING_SIZE = 64 * 1024;
/** A staging buffer with less room than this is left to its readers and another one used. */
const MIN_LANDING = 4 * 1024;

type NodeSocketInternals = {
  _handle?: { useUserBuffer?: (buffer: Buffer) => void } | null;
} & Record<symbol, unknown>;

/**
 * Makes the socket read into memory we choose, as `net.Socket`'s documented `onread` option does
 * (which `net.Server` offers no way to set for accepted sockets): `next` gives the region for each
 * read, `received` is told how many bytes landed there. False when this Node lacks the hooks;
 * the caller then uses 'data' events.
 */
function readIntoOwnMemory(socket: Socket, next: () => Buffer, received: (bytes: number) => void): boolean {
  const internals = socket as unknown as NodeSocketInternals;
  const handle = internals._handle;
  if (typeof handle?.useUserBuffer !== 'function') return false;
  const symbols = Object.getOwnPropertySymbols(socket);
  const named = (name: string) => symbols.find((symbol) => symbol.description === name);
  const [buffer, callback, generator] = [named('kBuffer'), named('kBufferCb'), named('kBufferGen')];
  if (buffer === undefined || callback === undefined || generator === undefined) return false;
  if (internals[buffer] !== null || socket.readableLength > 0) return false;
  const first = next();
  internals[buffer] = first;
  internals[callback] = (bytes: number) => {
    received(bytes);
  };
  internals[generator] = next;
  handle.useUserBuffer(first);
  return true;
}

/**
 * Reads over a socket, pausing it when too much is buffered (backpressure). Headers are pulled
 * with `read`/`readExactly`; a request body goes straight into its stream's pieces (no promise
 * per chunk), the bytes past it going back to the pull buffer.
 * Where Node allows it, the kernel copies each read straight into its final place (a body's
 * piece, or a reused staging buffer) instead of a fresh 64 KiB buffer per read.
 */
export class SocketReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  /** The body being received: bytes go to it first. */
  private sink: RequestBody | undefined;
  /** The sink asked for a pause (its consumer is behind). */
  private sinkPaused = false;
  /** Where bytes outside a body land; `stagingUsed` bytes of it may still be referenced. */
  private staging: Buffer = Buffer.allocUnsafe(STAGING_SIZE);
  private stagingUsed = 0;
  /** The staging buffer used before this one, taken again once no bytes wait in it. */
  private spareStaging: Buffer | undefined;
  /** The region handed out for the next read. */
  private landing: Buffer | undefined;
  /** True when reads land in memory we choose (else in Node's buffers, via 'data'). */
  readonly direct: boolean;

  constructor(
    private readonly socket: Socket,
    private readonly highWaterMark = 256 * 1024,
    allowDirect = true,
  ) {
    this.direct =
      allowDirect &&
      readIntoOwnMemory(
        socket,
        () => this.nextLanding(),
        (bytes) => this.received(this.landing!.subarray(0, bytes)),
      );
    if (!this.direct) socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('end', () => this.finish());
    socket.on('close', () => this.finish());
    socket.on('error', (error) => {
      this.failure = error;
      this.sink?.connectionLost(error);
      this.notify();
    });
  }

  /** The memory the next read goes into: the body's piece, else the staging buffer. */
  private nextLanding(): Buffer {
    let landing = this.sink?.landing();
    if (landing === undefined) {
      if (this.chunks.length === 0) this.stagingUsed = 0; // nobody references staged bytes
      if (STAGING_SIZE - this.stagingUsed < MIN_LANDING) this.switchStaging();
      landing = this.staging.subarray(this.stagingUsed);
    }
    this.landing = landing;
    return landing;
  }

  /**
   * Starts a fresh staging buffer while the current one's bytes wait for their readers (e.g. a
   * request's header came with the start of its body: the reader takes the header only once this
   * read's callback is over). Staged bytes are copied when handed out, so only those still in
   * `chunks` tie a staging buffer: the previous one is taken again once none does.
   */
  private switchStaging(): void {
    const spare = this.spareStaging;
    this.spareStaging = this.staging;
    const free = spare !== undefined && !this.chunks.some((chunk) => chunk.buffer === spare.buffer);
    this.staging = free ? spare : Buffer.allocUnsafe(STAGING_SIZE);
    this.stagingUsed = 0;
  }

  private received(chunk: Buffer): void {
    if (chunk.buffer === this.staging.buffer)
      this.stagingUsed = chunk.byteOffset - this.staging.byteOffset + chunk.length;
    if (this.sink !== undefined) {
      const rest = this.sink.feed(chunk);
      if (rest === undefined) return;
      chunk = rest;
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.applyBackpressure();
    this.notify();
  }

  private finish(): void {
    this.ended = true;
    this.sink?.connectionLost();
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private applyBackpressure(): void {
    const wanted = this.sinkPaused || this.buffered >= this.highWaterMark;
    if (wanted && !this.socket.isPaused()) this.socket.pause();
    else if (!wanted && this.socket.isPaused() && !this.ended) this.socket.resume();
  }

  /** @internal For RequestBody: its consumer is behind (true) or wants more (false). */
  pauseForBody(paused: boolean): void {
    this.sinkPaused = paused;
    this.applyBackpressure();
  }

  /** @internal For RequestBody: it has all its bytes. */
  detach(body: RequestBody): void {
    if (this.sink === body) this.sink = undefined;
    this.sinkPaused = false;
    this.applyBackpressure();
  }

  get closed(): boolean {
    return this.ended || this.failure !== undefined;
  }

  /** Up to `max` bytes (at least one), or null once the peer has closed and nothing is left. */
  async read(max: number): Promise<Buffer | null> {
    while (this.buffered === 0) {
      if (this.failure) throw this.failure;
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return this.take(max);
  }

  /**
   * Up to `max` of the buffered bytes (some must be buffered), without waiting; a copy when they
   * are in the staging buffer, unless `copyStaged` is false (the caller copies them at once).
   */
  private take(max: number, copyStaged = true): Buffer {
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
    this.applyBackpressure();
    // Staged bytes are overwritten by later reads: hand out a copy.
    const staged = result.buffer === this.staging.buffer || result.buffer === this.spareStaging?.buffer;
    return copyStaged && staged ? Buffer.from(result) : result;
  }

  /**
   * Exactly `size` bytes; null on a clean close before the first byte; throws on a close midway.
   * Bytes already received come back at once, without a promise (a request's header and name
   * usually arrive together).
   */
  readExactly(size: number): Buffer | Promise<Buffer | null> {
    if (size > 0 && this.buffered > 0 && this.chunks[0]!.length >= size) return this.take(size);
    return this.receiveExactly(size);
  }

  private async receiveExactly(size: number): Promise<Buffer | null> {
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

  /** A stream of the next `size` bytes, for a request body; read nothing else until it has them all. */
  body(size: number): RequestBody {
    const body = new RequestBody(this, size);
    // Bytes that came with the header first, then the socket's as they arrive.
    while (this.buffered > 0 && body.remaining > 0) body.feed(this.take(body.remaining, false));
    if (body.remaining > 0) {
      this.sink = body;
      if (this.closed) body.connectionLost(this.failure);
    }
    return body;
  }
}

/** Bodies (or their rest) below this size are gathered in a buffer of their own size. */
const SMALL_BODY = 64 * 1024;

/**
 * The body of a create request: exactly `size` bytes from the socket, gathered into pieces of up
 * to 1 MiB (reusable buffers) and pushed a piece at a time: a 0.5 MB instance is one chunk to its
 * consumer, not eight 64 KiB reads, each a fresh allocation. A consumer that has written a chunk
 * out may hand it back (`releaseChunk`) for the next body.
 * Once destroyed (its consumer failed), the rest of its bytes are dropped as they come, so the
 * next request starts at the right byte.
 */
export class RequestBody extends Readable implements ChunkReleasing {
  private remainingBytes: number;
  private lost: Error | undefined;
  private allReceived: (() => void) | undefined;
  private receiveFailed: ((error: Error) => void) | undefined;
  /** The piece being filled, how much of it is, and whether it is a reusable buffer. */
  private piece: Buffer | undefined;
  private filled = 0;
  private pieceReusable = false;
  /** Reusable buffers pushed to the consumer and not yet handed back. */
  private readonly lent = new WeakSet<ArrayBufferLike>();

  constructor(
    private readonly reader: SocketReader,
    readonly size: number,
  ) {
    super({ highWaterMark: REUSABLE_BUFFER_SIZE });
    this.remainingBytes = size;
    if (size === 0) this.push(null);
  }

  get remaining(): number {
    return this.remainingBytes;
  }

  /** @internal Takes what belongs to this body from `chunk`; returns the bytes past it, if any. */
  feed(chunk: Buffer): Buffer | undefined {
    const take = Math.min(chunk.length, this.remainingBytes);
    let offset = 0;
    while (offset < take) {
      if (this.destroyed) {
        this.remainingBytes -= take - offset;
        break;
      }
      if (this.piece === undefined) this.startPiece();
      const piece = this.piece!;
      // A read that went straight into the piece is already in place.
      const inPlace =
        offset === 0 && chunk.buffer === piece.buffer && chunk.byteOffset === piece.byteOffset + this.filled;
      const copied = inPlace ? take : chunk.copy(piece, this.filled, offset, take);
      offset += copied;
      this.filled += copied;
      this.remainingBytes -= copied;
      if (this.filled === piece.length) this.pushPiece();
    }
    if (this.remainingBytes === 0) {
      this.dropPiece();
      this.reader.detach(this);
      this.allReceived?.();
    }
    return take === chunk.length ? undefined : chunk.subarray(take);
  }

  private startPiece(): void {
    // What is left of the body, plus what this piece already holds (nothing: it is new).
    this.pieceReusable = this.remainingBytes >= SMALL_BODY;
    const buffer = this.pieceReusable ? takeReusableBuffer() : Buffer.allocUnsafe(this.remainingBytes);
    this.piece = buffer.length > this.remainingBytes ? buffer.subarray(0, this.remainingBytes) : buffer;
    this.filled = 0;
  }

  private pushPiece(): void {
    const piece = this.piece!;
    if (this.pieceReusable) this.lent.add(piece.buffer);
    this.piece = undefined;
    this.filled = 0;
    const more = this.push(piece);
    if (this.remainingBytes === 0) this.push(null);
    else if (!more) this.reader.pauseForBody(true);
  }

  /**
   * Forgets the piece being filled. Not recycled: the socket's next read may already be aimed at
   * it, and recycled memory may be lent to another transfer by then.
   */
  private dropPiece(): void {
    this.piece = undefined;
    this.filled = 0;
  }

  /** @internal Where the next bytes of this body should land; undefined once it wants none. */
  landing(): Buffer | undefined {
    if (this.destroyed || this.remainingBytes === 0) return undefined;
    if (this.piece === undefined) this.startPiece();
    return this.piece!.subarray(this.filled);
  }

  releaseChunk(chunk: Buffer): void {
    if (this.lent.delete(chunk.buffer)) recycleReusableBuffer(chunk);
  }

  /** @internal The socket closed or failed before this body was complete. */
  connectionLost(error?: Error): void {
    if (this.remainingBytes === 0 || this.lost !== undefined) return;
    this.lost = new Error(
      `connection closed after ${this.size - this.remainingBytes} of ${this.size} bytes` +
        (error ? `: ${error.message}` : ''),
    );
    this.reader.detach(this);
    this.destroy(this.lost);
    this.receiveFailed?.(this.lost);
  }

  override _read(): void {
    this.reader.pauseForBody(false);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.dropPiece();
    // Keep the socket flowing: the rest of the body is dropped as it arrives.
    if (this.remainingBytes > 0) this.reader.pauseForBody(false);
    callback(error);
  }

  /** Discards what the consumer did not read, so the next request starts at the right byte. */
  async discardRest(): Promise<void> {
    if (!this.destroyed) this.destroy();
    if (this.remainingBytes === 0) return;
    if (this.lost !== undefined) throw this.lost;
    await new Promise<void>((resolve, reject) => {
      this.allReceived = resolve;
      this.receiveFailed = reject;
    });
  }
}
