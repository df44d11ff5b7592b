import { Transform, type TransformCallback } from 'node:stream';

/**
 * Pass on only bytes [offset, offset + length) of what flows through, but keep consuming to the
 * end so that an integrity check upstream still runs (and fails this stream) after the range.
 */
export class RangeSlice extends Transform {
  private position = 0;

  constructor(
    private readonly offset: number,
    private readonly length: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const start = Math.max(this.offset - this.position, 0);
    const end = Math.min(this.offset + this.length - this.position, chunk.length);
    this.position += chunk.length;
    if (end > start) this.push(chunk.subarray(start, end));
    callback();
  }
}
