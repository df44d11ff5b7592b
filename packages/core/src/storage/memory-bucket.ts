import { Readable } from 'node:stream';
import {
  ObjectNotFoundError,
  ObjectStorageError,
  PreconditionFailedError,
  RangeNotSatisfiableError,
} from '../errors.js';
import type { BucketClient, ListedObject, ListOptions, ObjectReadStream, PutOptions } from './contract.js';

/**
 * An in-memory BucketClient for unit tests of the layers above it (naming, fallbacks,
 * encryption, hybrid). It holds whole objects: never a proof that a real backend works.
 */
export class MemoryBucketClient implements BucketClient {
  readonly description = 'memory://test-bucket';
  readonly objects = new Map<string, Buffer>();
  /** Bumped by every write, as a generation. */
  private readonly versions = new Map<string, number>();
  private writes = 0;
  /** Every call, for assertions: `put name`, `get name`, `getRange name`, `delete name`. */
  readonly calls: string[] = [];

  async put(name: string, size: number, body: Readable, options: PutOptions = {}): Promise<void> {
    this.calls.push(`put ${name}`);
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    const data = Buffer.concat(chunks);
    if (data.length !== size) {
      throw new ObjectStorageError(`put ${name}: body has ${data.length} bytes, expected ${size}`);
    }
    if (options.ifVersion !== undefined && String(this.versions.get(name)) !== options.ifVersion) {
      throw new PreconditionFailedError(`put ${name}: it is not at version ${options.ifVersion} any more`);
    }
    this.objects.set(name, data);
    this.versions.set(name, ++this.writes);
  }

  private find(name: string): Buffer {
    const data = this.objects.get(name);
    if (data === undefined) throw new ObjectNotFoundError(name, this.description);
    return data;
  }

  async get(name: string): Promise<ObjectReadStream> {
    this.calls.push(`get ${name}`);
    const data = this.find(name);
    return { size: data.length, body: Readable.from([data], { objectMode: false }) };
  }

  async getRange(name: string, offset: number, length: number): Promise<Readable> {
    this.calls.push(`getRange ${name}`);
    const data = this.find(name);
    if (offset + length > data.length) {
      throw new RangeNotSatisfiableError(
        `range ${offset}+${length} past the end of ${name} (${data.length} bytes)`,
      );
    }
    return Readable.from([data.subarray(offset, offset + length)], { objectMode: false });
  }

  async delete(name: string): Promise<void> {
    this.calls.push(`delete ${name}`);
    this.objects.delete(name);
    this.versions.delete(name);
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ListedObject> {
    this.calls.push(`list ${prefix} ${options.pageSize ?? 1000}`);
    const names = [...this.objects.keys()].filter((name) => name.startsWith(prefix)).sort();
    for (const name of names) {
      const data = this.objects.get(name);
      // Deleted since the listing started: a real listing page would not show it either.
      if (data !== undefined) yield { name, size: data.length, version: String(this.versions.get(name)) };
    }
  }

  async close(): Promise<void> {}
}
