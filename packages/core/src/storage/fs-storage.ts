import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import {
  IntegrityError,
  ObjectNotFoundError,
  ObjectStorageError,
  RangeNotSatisfiableError,
} from '../errors.js';
import type { ObjectKey, ObjectReadStream, ObjectStorage } from './contract.js';
import { HEAD_SIZE, type StoredObject } from './stored-object.js';
import { assertValidRange, assertValidSize } from './exact-size.js';
import { assertOrthancUuid } from './naming.js';

export interface FileSystemStorageOptions {
  /** Root directory; objects go to `<root>/<2 chars>/<2 chars>/<uuid>` as Orthanc lays them out. */
  readonly root: string;
  /** fsync each file written (Orthanc's `SyncStorageArea`). */
  readonly sync: boolean;
}

function isCode(error: unknown, ...codes: string[]): boolean {
  return (
    typeof error === 'object' && error !== null && codes.includes((error as NodeJS.ErrnoException).code ?? '')
  );
}

/** Bytes gathered before one writev: few system calls per object, memory bounded. */
const WRITE_BATCH = 1024 * 1024;
/** Bound of the set of directories known to exist (Orthanc's layout has 65,536 leaves). */
const MAX_KNOWN_DIRECTORIES = 65_536;
/** Bytes per read of a stored file. */
const READ_CHUNK = 1024 * 1024;

/** Writes all of `buffers` at `position`, continuing after short writes. */
async function writeAll(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  while (pending.length > 0) {
    let { bytesWritten } = await handle.writev(pending, position);
    position += bytesWritten;
    const rest: Buffer[] = [];
    for (const buffer of pending) {
      if (bytesWritten >= buffer.length) bytesWritten -= buffer.length;
      else {
        rest.push(bytesWritten === 0 ? buffer : buffer.subarray(bytesWritten));
        bytesWritten = 0;
      }
    }
    pending = rest;
  }
}

/** Writes exactly `size` bytes of `body` into `handle`, in batches; fails on any other length. */
async function writeBody(handle: FileHandle, body: Readable, size: number, what: string): Promise<void> {
  let seen = 0;
  let written = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    seen += chunk.length;
    if (seen > size) throw new ObjectStorageError(`${what}: more than the expected ${size} bytes`);
    batch.push(chunk);
    batchBytes += chunk.length;
    if (batchBytes >= WRITE_BATCH) {
      await writeAll(handle, batch, written);
      written += batchBytes;
      batch = [];
      batchBytes = 0;
    }
  }
  if (seen !== size) throw new ObjectStorageError(`${what}: ${seen} bytes instead of the expected ${size}`);
  if (batchBytes > 0) await writeAll(handle, batch, written);
}

/**
 * Exactly `length` bytes of a file from `offset`, in reads of up to 1 MiB; fails with an
 * IntegrityError when the file ends sooner. Closes the handle when done or destroyed.
 */
class FileSlice extends Readable {
  private position: number;
  private remaining: number;

  constructor(
    private readonly handle: FileHandle,
    offset: number,
    length: number,
    private readonly path: string,
  ) {
    super({ highWaterMark: READ_CHUNK });
    this.position = offset;
    this.remaining = length;
  }

  override _read(): void {
    if (this.remaining === 0) {
      this.push(null);
      return;
    }
    const buffer = Buffer.allocUnsafe(Math.min(this.remaining, READ_CHUNK));
    this.handle.read(buffer, 0, buffer.length, this.position).then(
      ({ bytesRead }) => {
        if (this.destroyed) return;
        if (bytesRead === 0) {
          this.destroy(
            new IntegrityError(`reading ${this.path}: the file ended ${this.remaining} bytes early`),
          );
          return;
        }
        this.position += bytesRead;
        this.remaining -= bytesRead;
        this.push(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
        if (this.remaining === 0) this.push(null);
      },
      (error: unknown) => this.destroy(error as Error),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.handle.close().then(
      () => callback(error),
      () => callback(error),
    );
  }
}

/**
 * Core's file-system backend, in Orthanc's own layout (so hybrid mode reads what Orthanc wrote).
 * Writes are atomic: a temp file in the target directory, renamed once complete, then fsync
 * when `sync` (Orthanc's `SyncStorageArea`). The content type plays no part in the path, as in Orthanc.
 */
export class FileSystemStorage implements ObjectStorage {
  readonly supportsVerifiedRangeReads = true;
  /** Directories this process made or wrote in: Orthanc's layout has at most 65,536. */
  private readonly knownDirectories = new Set<string>();
  constructor(readonly options: FileSystemStorageOptions) {}

  /** `<root>/<c1c2>/<c3c4>/<uuid>`. */
  pathOf(key: ObjectKey): string {
    assertOrthancUuid(key.uuid);
    return join(this.options.root, key.uuid.slice(0, 2), key.uuid.slice(2, 4), key.uuid);
  }

  private where(): string {
    return `file system ${this.options.root}`;
  }

  async create(key: ObjectKey, size: number, body: Readable): Promise<void> {
    const path = this.pathOf(key);
    assertValidSize(size, `creating ${path}`);
    const temp = `${path}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
    const handle = await this.openTemp(dirname(path), temp);
    let renamed = false;
    try {
      await writeBody(handle, body, size, `creating ${path}`);
      // Renamed before the fsync: one fsync of the file makes its data and its name durable, as
      // Orthanc's own storage does for its files (it writes them in place, then fsyncs them).
      await rename(temp, path);
      renamed = true;
      if (this.options.sync) await handle.sync();
      await handle.close();
    } catch (error) {
      await handle.close().catch(() => {});
      await unlink(renamed ? path : temp).catch(() => {});
      body.destroy();
      throw error instanceof ObjectStorageError
        ? error
        : new ObjectStorageError(`cannot write ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Opens the temp file. Its directory is made first unless this process made or used it before
   * (one call instead of a failed open, mkdir and open again); a concurrent remove may drop it
   * meanwhile: make it again and retry.
   */
  private async openTemp(directory: string, temp: string): Promise<FileHandle> {
    for (let attempt = 1; ; attempt++) {
      if (!this.knownDirectories.has(directory)) {
        await mkdir(directory, { recursive: true });
        if (this.knownDirectories.size >= MAX_KNOWN_DIRECTORIES) this.knownDirectories.clear();
        this.knownDirectories.add(directory);
      }
      try {
        return await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      } catch (error) {
        this.knownDirectories.delete(directory);
        if (!isCode(error, 'ENOENT') || attempt >= 5) {
          throw new ObjectStorageError(`cannot create ${temp}: ${(error as Error).message}`, {
            cause: error,
          });
        }
      }
    }
  }

  private async openExisting(key: ObjectKey): Promise<{ handle: FileHandle; size: number; path: string }> {
    const path = this.pathOf(key);
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_RDONLY);
    } catch (error) {
      if (isCode(error, 'ENOENT', 'ENOTDIR'))
        throw new ObjectNotFoundError(path, this.where(), { cause: error });
      throw new ObjectStorageError(`cannot open ${path}: ${(error as Error).message}`, { cause: error });
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new ObjectStorageError(`${path} is not a regular file`);
      return { handle, size: stats.size, path };
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
  }

  /** Stream `length` bytes from `offset` and check that exactly that many arrive. */
  private streamSlice(handle: FileHandle, offset: number, length: number, path: string): Readable {
    return new FileSlice(handle, offset, length, path);
  }

  async read(key: ObjectKey): Promise<ObjectReadStream> {
    const { handle, size, path } = await this.openExisting(key);
    return { size, body: this.streamSlice(handle, 0, size, path) };
  }

  async readRange(key: ObjectKey, offset: number, length: number): Promise<Readable> {
    assertValidRange(offset, length, `reading a range of ${key.uuid}`);
    const { handle, size, path } = await this.openExisting(key);
    if (offset + length > size) {
      await handle.close().catch(() => {});
      throw new RangeNotSatisfiableError(
        `range offset ${offset} length ${length} is past the end of ${path} (${size} bytes)`,
      );
    }
    return this.streamSlice(handle, offset, length, path);
  }

  /** Where the file is, its size and first bytes; undefined when there is none. */
  async inspect(key: ObjectKey): Promise<StoredObject | undefined> {
    let opened: { handle: FileHandle; size: number; path: string };
    try {
      opened = await this.openExisting(key);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) return undefined;
      throw error;
    }
    try {
      const head = Buffer.alloc(Math.min(HEAD_SIZE, opened.size));
      if (head.length > 0) await opened.handle.read(head, 0, head.length, 0);
      return {
        location: opened.path,
        locationKind: 'path',
        container: this.where(),
        size: opened.size,
        head,
      };
    } finally {
      await opened.handle.close().catch(() => {});
    }
  }

  async remove(key: ObjectKey): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (error) {
      if (!isCode(error, 'ENOENT', 'ENOTDIR')) {
        throw new ObjectStorageError(`cannot remove ${path}: ${(error as Error).message}`, { cause: error });
      }
    }
    // Like Orthanc: drop the two levels of directories when they are now empty.
    const parent = dirname(path);
    try {
      this.knownDirectories.delete(parent);
      await rmdir(parent);
      await rmdir(dirname(parent));
    } catch {
      // Not empty, or removed concurrently: both fine.
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
