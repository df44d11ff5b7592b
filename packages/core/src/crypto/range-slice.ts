import { Transform, type TransformCallback } from 'node:stream';

/**
 * Pass on only bytes [offset, offset + length) of what flows through, but keep consuming to the
 * end so that an integrity check upstream still runs (and fails this stream) after the range.
 * With `holdUntilEnd`, the range is passed on only once the input has ended without error: for
 * A1, whose tag comes last, nothing unverified leaves (the caller bounds `length`).
 */
export class RangeSlice extends Transform {
  private position = 0;
  private held: Buffer[] | undefined;

  constructor(
    private readonly offset: number,
    private readonly length: number,
    holdUntilEnd = false,
  ) {
    super();
    if (holdUntilEnd) this.held = [];
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const start = Math.max(this.offset - this.position, 0);
    const end = Math.min(this.offset + this.length - this.position, chunk.length);
    this.position += chunk.length;
    if (end > start) {
      const part = chunk.subarray(start, end);
      if (this.held === undefined) this.push(part);
      else this.held.push(part);
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    for (const part of this.held ?? []) this.push(part);
    this.held = undefined;
    callback();
  }
}
