import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  fsync,
  mkdirSync,
  openSync,
  read,
  renameSync,
  unlinkSync,
  writev,
  writevSync,
} from 'node:fs';
import { rmdir, unlink } from 'node:fs/promises';
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
import { eachChunk } from './each-chunk.js';
import {
  REUSABLE_BUFFER_SIZE,
  recycleReusableBuffer,
  releaseChunk,
  takeReusableBuffer,
  type ChunkReleasing,
} from './reusable-buffers.js';

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
const READ_CHUNK = REUSABLE_BUFFER_SIZE;
/** Temp files are `<final name>.<tag>-<count>.tmp`: unique per thread without a random draw per file. */
const TEMP_TAG = `${process.pid}-${randomBytes(4).toString('hex')}`;
let tempCount = 0;
/** Below this, a read gets a buffer of its own size rather than a reusable 1 MiB one. */
const SMALL_READ = 64 * 1024;

/** fsync as a promise: the one file call that waits on the device, kept off the event loop. */
function fsyncFile(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (error) => (error ? reject(error) : resolve())));
}

/** Reads into `buffer` from `position`: how many bytes came. */
function readAt(fd: number, buffer: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    read(fd, buffer, 0, buffer.length, position, (error, bytesRead) =>
      error ? reject(error) : resolve(bytesRead),
    ),
  );
}

/** Writes all of `buffers` at `position`, continuing after short writes. */
async function writeAll(fd: number, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  while (pending.length > 0) {
    const bytesWritten = await new Promise<number>((resolve, reject) =>
      writev(fd, pending, position, (error, written) => (error ? reject(error) : resolve(written))),
    );
    position += bytesWritten;
    pending = unwritten(pending, bytesWritten);
  }
}

/** As writeAll, synchronously. */
function writeAllSync(fd: number, buffers: Buffer[], position: number): void {
  let pending = buffers;
  while (pending.length > 0) {
    const bytesWritten = writevSync(fd, pending, position);
    position += bytesWritten;
    pending = unwritten(pending, bytesWritten);
  }
}

/** What of `buffers` a write of `bytesWritten` bytes left. */
function unwritten(buffers: Buffer[], bytesWritten: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const buffer of buffers) {
    if (bytesWritten >= buffer.length) bytesWritten -= buffer.length;
    else {
      rest.push(bytesWritten === 0 ? buffer : buffer.subarray(bytesWritten));
      bytesWritten = 0;
    }
  }
  return rest;
}

/**
 * Writes exactly `size` bytes of `body` into `fd`, in batches; fails on any other length. Each
 * chunk written goes back to the body (`releaseChunk`), which may reuse its memory.
 * A body of at most one batch (a typical DICOM instance) is written synchronously: copying it into
 * the page cache takes tens of microseconds, less than a round trip through libuv's pool (when the
 * kernel throttles dirty pages it holds this thread, as it holds Orthanc's own writers). Larger
 * bodies are written asynchronously, so their long copies never hold the thread.
 */
async function writeBody(fd: number, body: Readable, size: number, what: string): Promise<void> {
  const inline = size <= WRITE_BATCH;
  let seen = 0;
  let written = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const wrote = () => {
    for (const chunk of batch) releaseChunk(body, chunk);
    written += batchBytes;
    batch = [];
    batchBytes = 0;
  };
  const flush = (): Promise<void> | undefined => {
    if (inline) {
      writeAllSync(fd, batch, written);
      wrote();
      return undefined;
    }
    return writeAll(fd, batch, written).then(wrote);
  };
  await eachChunk(
    body,
    (chunk) => {
      seen += chunk.length;
      if (seen > size) throw new ObjectStorageError(`${what}: more than the expected ${size} bytes`);
      batch.push(chunk);
      batchBytes += chunk.length;
      return batchBytes >= WRITE_BATCH ? flush() : undefined;
    },
    // Gathered for one writev anyway: joining queued chunks first would only copy them.
    { asProduced: true },
  );
  if (seen !== size) throw new ObjectStorageError(`${what}: ${seen} bytes instead of the expected ${size}`);
  if (batchBytes > 0) await flush();
}

/**
 * Exactly `length` bytes of a file from `offset`, in reads of up to 1 MiB into reusable buffers;
 * fails with an IntegrityError when the file ends sooner. Closes the file when done or destroyed.
 * A consumer that has sent a chunk on may hand it back (`releaseChunk`) for the next read.
 */
class FileSlice extends Readable implements ChunkReleasing {
  private position: number;
  private remaining: number;
  private fd: number | undefined;
  /** Buffers this stream lent to its consumer and may take back. */
  private readonly lent = new WeakSet<ArrayBufferLike>();

  constructor(
    fd: number,
    offset: number,
    length: number,
    private readonly path: string,
  ) {
    super({ highWaterMark: READ_CHUNK });
    this.fd = fd;
    this.position = offset;
    this.remaining = length;
  }

  override _read(): void {
    if (this.remaining === 0) {
      this.push(null);
      return;
    }
    // Small slices (headers, ranges) get their own small buffer; large ones a reusable one.
    const reusable = this.remaining >= SMALL_READ;
    const buffer = reusable ? takeReusableBuffer() : Buffer.allocUnsafe(this.remaining);
    const length = Math.min(this.remaining, buffer.length);
    read(this.fd!, buffer, 0, length, this.position, (error, bytesRead) => {
      if (this.destroyed || error || bytesRead === 0) {
        if (reusable) recycleReusableBuffer(buffer);
        if (error) this.destroy(error);
        else if (!this.destroyed)
          this.destroy(
            new IntegrityError(`reading ${this.path}: the file ended ${this.remaining} bytes early`),
          );
        return;
      }
      this.position += bytesRead;
      this.remaining -= bytesRead;
      if (reusable) this.lent.add(buffer.buffer);
      this.push(buffer.subarray(0, bytesRead));
      if (this.remaining === 0) this.push(null);
    });
  }

  releaseChunk(chunk: Buffer): void {
    if (this.lent.delete(chunk.buffer)) recycleReusableBuffer(chunk);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) closeQuietly(fd);
    callback(error);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Nothing was written through it: nothing to lose.
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
    const { fd, temp } = this.openTemp(path);
    let renamed = false;
    try {
      await writeBody(fd, body, size, `creating ${path}`);
      // Renamed before the fsync: one fsync of the file makes its data and its name durable, as
      // Orthanc's own storage does for its files (it writes them in place, then fsyncs them).
      renameSync(temp, path);
      renamed = true;
      if (this.options.sync) await fsyncFile(fd);
      closeSync(fd);
    } catch (error) {
      closeQuietly(fd);
      try {
        unlinkSync(renamed ? path : temp);
      } catch {
        // Already gone: nothing to clean.
      }
      body.destroy();
      throw error instanceof ObjectStorageError
        ? error
        : new ObjectStorageError(`cannot write ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Creates a temp file beside `path`. Its directory is made first unless this process made or
   * used it before; a concurrent remove may drop it meanwhile: make it again and retry.
   * Metadata calls (mkdir, open, rename, close, fstat) are synchronous: on a local disk they take
   * microseconds, less than a round trip through libuv's thread pool; writes, reads and fsync,
   * which move data or wait on the device, stay asynchronous.
   */
  private openTemp(path: string): { fd: number; temp: string } {
    const directory = dirname(path);
    for (let attempt = 1; ; attempt++) {
      const temp = `${path}.${TEMP_TAG}-${++tempCount}.tmp`;
      try {
        if (!this.knownDirectories.has(directory)) {
          mkdirSync(directory, { recursive: true });
          if (this.knownDirectories.size >= MAX_KNOWN_DIRECTORIES) this.knownDirectories.clear();
          this.knownDirectories.add(directory);
        }
        return { fd: openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644), temp };
      } catch (error) {
        this.knownDirectories.delete(directory);
        if (!isCode(error, 'ENOENT', 'EEXIST') || attempt >= 5) {
          throw new ObjectStorageError(`cannot create ${temp}: ${(error as Error).message}`, {
            cause: error,
          });
        }
      }
    }
  }

  private openExisting(key: ObjectKey): { fd: number; size: number; path: string } {
    const path = this.pathOf(key);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY);
    } catch (error) {
      if (isCode(error, 'ENOENT', 'ENOTDIR'))
        throw new ObjectNotFoundError(path, this.where(), { cause: error });
      throw new ObjectStorageError(`cannot open ${path}: ${(error as Error).message}`, { cause: error });
    }
    try {
      const stats = fstatSync(fd);
      if (!stats.isFile()) throw new ObjectStorageError(`${path} is not a regular file`);
      return { fd, size: stats.size, path };
    } catch (error) {
      closeQuietly(fd);
      throw error instanceof ObjectStorageError
        ? error
        : new ObjectStorageError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  async read(key: ObjectKey): Promise<ObjectReadStream> {
    const { fd, size, path } = this.openExisting(key);
    return { size, body: new FileSlice(fd, 0, size, path) };
  }

  async readRange(key: ObjectKey, offset: number, length: number): Promise<Readable> {
    assertValidRange(offset, length, `reading a range of ${key.uuid}`);
    const { fd, size, path } = this.openExisting(key);
    if (offset + length > size) {
      closeQuietly(fd);
      throw new RangeNotSatisfiableError(
        `range offset ${offset} length ${length} is past the end of ${path} (${size} bytes)`,
      );
    }
    return new FileSlice(fd, offset, length, path);
  }

  /** Where the file is, its size and first bytes; undefined when there is none. */
  async inspect(key: ObjectKey): Promise<StoredObject | undefined> {
    let opened: { fd: number; size: number; path: string };
    try {
      opened = this.openExisting(key);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) return undefined;
      throw error;
    }
    try {
      const head = Buffer.alloc(Math.min(HEAD_SIZE, opened.size));
      if (head.length > 0) await readAt(opened.fd, head, 0);
      return {
        location: opened.path,
        locationKind: 'path',
        container: this.where(),
        size: opened.size,
        head,
      };
    } finally {
      closeQuietly(opened.fd);
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
