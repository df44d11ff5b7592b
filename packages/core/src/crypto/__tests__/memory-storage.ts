import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { ObjectNotFoundError, ObjectStorageError, RangeNotSatisfiableError } from '../../errors.js';
import type { ObjectKey, ObjectReadStream, ObjectStorage } from '../../storage/contract.js';
import { chunks } from './helpers.js';

/** Plain bytes in a Map: enough to test the decorator's logic, not a backend. */
export class MemoryStorage implements ObjectStorage {
  readonly objects = new Map<string, Buffer>();
  readonly supportsVerifiedRangeReads = true;
  closed = false;

  async create(key: ObjectKey, size: number, body: Readable): Promise<void> {
    const bytes = await buffer(body);
    if (bytes.length !== size) throw new ObjectStorageError(`expected ${size} bytes, got ${bytes.length}`);
    this.objects.set(key.uuid, bytes);
  }

  async read(key: ObjectKey): Promise<ObjectReadStream> {
    const bytes = this.get(key);
    return { size: bytes.length, body: Readable.from(chunks(bytes, 1000)) };
  }

  /** Every range request: to check how many a read makes and how many bytes it fetches. */
  readonly rangeRequests: { offset: number; length: number }[] = [];

  async readRange(key: ObjectKey, offset: number, length: number): Promise<Readable> {
    const bytes = this.get(key);
    if (offset + length > bytes.length) {
      throw new RangeNotSatisfiableError(`range ${offset}+${length} past the end of ${key.uuid}`);
    }
    this.rangeRequests.push({ offset, length });
    return Readable.from(chunks(bytes.subarray(offset, offset + length), 1000));
  }

  async remove(key: ObjectKey): Promise<void> {
    this.objects.delete(key.uuid);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private get(key: ObjectKey): Buffer {
    const bytes = this.objects.get(key.uuid);
    if (bytes === undefined) throw new ObjectNotFoundError(key.uuid, 'memory');
    return bytes;
  }
}
