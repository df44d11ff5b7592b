import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline, Readable, Writable } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { ObjectNotFoundError, ObjectStorageError, RangeNotSatisfiableError } from '../errors.js';
import type { ObjectKey, ObjectReadStream, ObjectStorage } from './contract.js';
import { HEAD_SIZE, type StoredObject } from './stored-object.js';
import { assertValidRange, assertValidSize, exactSize } from './exact-size.js';
import { assertOrthancUuid } from './naming.js';

export interface FileSystemStorageOptions {
  /** Root directory; objects go to `<root>/<2 chars>/<2 chars>/<uuid>` as Orthanc lays them out. */
  readonly root: string;
  /** fsync before rename (Orthanc's `SyncStorageArea`). */
  readonly sync: boolean;
}

function isCode(error: unknown, ...codes: string[]): boolean {
  return (
    typeof error === 'object' && error !== null && codes.includes((error as NodeJS.ErrnoException).code ?? '')
  );
}

/** Writes a stream into a file handle, keeping the position itself (no implicit append). */
function fileSink(handle: FileHandle): Writable {
  let position = 0;
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const writeAll = async (): Promise<void> => {
        let done = 0;
        while (done < chunk.length) {
          const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, position);
          done += bytesWritten;
          position += bytesWritten;
        }
      };
      writeAll().then(() => callback(), callback);
    },
  });
}

/**
 * Core's file-system backend, in Orthanc's own layout (so hybrid mode reads what Orthanc wrote).
 * Writes are atomic: a temp file in the target directory, fsync when `sync`, rename, fsync of
 * the directory. The content type plays no part in the path, as in Orthanc.
 */
export class FileSystemStorage implements ObjectStorage {
  readonly supportsVerifiedRangeReads = true;
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
    const directory = dirname(path);
    const temp = `${path}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
    const handle = await this.openTemp(directory, temp);
    let closed = false;
    try {
      await pipelineAsync(body, exactSize(size, `creating ${path}`, 'input'), fileSink(handle));
      if (this.options.sync) await handle.sync();
      closed = true;
      await handle.close();
      await rename(temp, path);
    } catch (error) {
      if (!closed) await handle.close().catch(() => {});
      await unlink(temp).catch(() => {});
      body.destroy();
      throw error instanceof ObjectStorageError
        ? error
        : new ObjectStorageError(`cannot write ${path}: ${(error as Error).message}`, { cause: error });
    }
    if (this.options.sync) await this.syncDirectory(directory);
  }

  /** A concurrent remove may drop the (empty) directory between mkdir and open: retry. */
  private async openTemp(directory: string, temp: string): Promise<FileHandle> {
    for (let attempt = 1; ; attempt++) {
      await mkdir(directory, { recursive: true });
      try {
        return await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      } catch (error) {
        if (!isCode(error, 'ENOENT') || attempt >= 5) {
          throw new ObjectStorageError(`cannot create ${temp}: ${(error as Error).message}`, {
            cause: error,
          });
        }
      }
    }
  }

  private async syncDirectory(directory: string): Promise<void> {
    const handle = await open(directory, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
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
    if (length === 0) {
      void handle.close().catch(() => {});
      return Readable.from([]);
    }
    const source = handle.createReadStream({ start: offset, end: offset + length - 1, autoClose: true });
    return pipeline(source, exactSize(length, `reading ${path}`, 'stored'), () => {});
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
