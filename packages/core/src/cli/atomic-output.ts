import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { constants, createWriteStream, unlinkSync, type WriteStream } from 'node:fs';
import { access, chmod, link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';

/** Temp files to remove if the process is interrupted. */
const pending = new Set<string>();
let signalsHooked = false;

function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const path of pending) {
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      }
      process.stderr.write(`orthanc-object-storage: interrupted by ${signal}; no output written\n`);
      // Re-raise with the default action (the `once` listener is gone): the conventional status,
      // and no wait for a thread-pool read blocked on a pipe or FIFO, which process.exit() would hang on.
      process.kill(process.pid, signal);
    });
  }
}

export interface AtomicOutputOptions {
  /** File mode of OUT (applied exactly, whatever the umask). */
  readonly mode: number;
  /** Replace an existing OUT instead of refusing. */
  readonly overwrite: boolean;
}

/**
 * An output file that appears at its path only when complete: bytes go to a temp file beside
 * OUT, which is flushed to disk and then linked (or renamed) into place. `abort` removes it.
 */
export class AtomicOutput {
  private writer: WriteStream | undefined;
  private committed = false;

  private constructor(
    readonly path: string,
    private readonly tempPath: string,
    private readonly options: AtomicOutputOptions,
  ) {}

  /** Throws a one-line error when OUT exists (unless overwriting) or the temp file cannot be made. */
  static async create(path: string, options: AtomicOutputOptions): Promise<AtomicOutput> {
    if (!options.overwrite && (await exists(path))) {
      throw new Error(`${path} already exists; refusing to overwrite it`);
    }
    const tempPath = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.partial`);
    hookSignals();
    try {
      // Created now so that a bad directory fails before any work; the umask can only narrow the mode.
      await (await open(tempPath, 'wx', options.mode)).close();
    } catch (error) {
      throw new Error(`cannot create a file beside ${path} (${(error as NodeJS.ErrnoException).code})`);
    }
    pending.add(tempPath);
    return new AtomicOutput(path, tempPath, options);
  }

  /** The stream to write the content into (once). */
  stream(): Writable {
    this.writer = createWriteStream(this.tempPath, { flags: 'r+', flush: true, highWaterMark: 1 << 20 });
    return this.writer;
  }

  /** Call once everything has been written without error. */
  async commit(): Promise<void> {
    const writer = this.writer;
    if (writer !== undefined && !writer.closed) {
      if (!writer.writableFinished)
        throw new Error(`internal error: ${this.path} committed before it was complete`);
      await once(writer, 'close');
    }
    await chmod(this.tempPath, this.options.mode);
    if (this.options.overwrite) {
      await rename(this.tempPath, this.path);
    } else {
      await publishWithoutOverwrite(this.tempPath, this.path);
    }
    pending.delete(this.tempPath);
    this.committed = true;
  }

  /** Remove the temp file; safe to call after a failure at any point, and after `commit`. */
  async abort(): Promise<void> {
    if (this.committed) return;
    if (this.writer !== undefined && !this.writer.closed) {
      this.writer.destroy();
      await once(this.writer, 'close').catch(() => {});
    }
    await unlink(this.tempPath).catch(() => {});
    pending.delete(this.tempPath);
  }
}
/** `link` fails if OUT appeared meanwhile; file systems without hard links fall back to a checked rename. */
async function publishWithoutOverwrite(tempPath: string, path: string): Promise<void> {
  try {
    await link(tempPath, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new Error(`${path} already exists; refusing to overwrite it`);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP') throw error;
    if (await exists(path)) throw new Error(`${path} already exists; refusing to overwrite it`);
    await rename(tempPath, path);
    return;
  }
  await unlink(tempPath);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}
