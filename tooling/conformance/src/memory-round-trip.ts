import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { MemoryChildReport, MemoryChildRequest } from './memory-child.js';

export interface BoundedMemoryRoundTripOptions {
  /** Absolute path of a JS module exporting `createStorage(options)` (or a default factory). */
  readonly factoryModule: string;
  /** Passed to the factory through IPC (never argv: it may hold secrets). Must be JSON-serializable. */
  readonly factoryOptions?: unknown;
  /** At least 100 MB for the contract's claim. */
  readonly sizeBytes: number;
  /** When set, the child's peak RSS must not exceed it. */
  readonly maxRssBytes?: number;
  /** Give up after this long (default 600 s). */
  readonly timeoutMs?: number;
}

export interface BoundedMemoryRoundTripResult {
  readonly peakRssBytes: number;
  readonly createSeconds: number;
  readonly readSeconds: number;
}

/** The compiled child script; from sources (ts-jest), the package's dist. */
function childScriptPath(): string {
  const beside = fileURLToPath(new URL('./memory-child.js', import.meta.url));
  return existsSync(beside) ? beside : fileURLToPath(new URL('../dist/memory-child.js', import.meta.url));
}

/**
 * Run one create + read round trip of `sizeBytes` streamed bytes in a child Node process
 * (process.execPath), verify it by sha256, and return the child's peak RSS (VmHWM).
 */
export async function expectBoundedMemoryRoundTrip(
  options: BoundedMemoryRoundTripOptions,
): Promise<BoundedMemoryRoundTripResult> {
  const childScript = childScriptPath();
  const child = fork(childScript, [], {
    execPath: process.execPath,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const request: MemoryChildRequest = {
    factoryModule: options.factoryModule,
    factoryOptions: options.factoryOptions ?? {},
    sizeBytes: options.sizeBytes,
    seed: 4242,
  };
  const report = await new Promise<MemoryChildReport>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bounded-memory round trip of ${options.sizeBytes} B timed out`));
    }, options.timeoutMs ?? 600_000);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve(message as MemoryChildReport);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`bounded-memory child exited (code ${code}, signal ${signal}) without a report`));
    });
    child.send(request);
  });
  if (!report.ok) throw new Error(`bounded-memory round trip failed in the child: ${report.error}`);
  const result = {
    peakRssBytes: report.peakRssBytes ?? 0,
    createSeconds: report.createSeconds ?? 0,
    readSeconds: report.readSeconds ?? 0,
  };
  if (options.maxRssBytes !== undefined) {
    expect(result.peakRssBytes).toBeGreaterThan(0);
    expect(result.peakRssBytes).toBeLessThanOrEqual(options.maxRssBytes);
  }
  return result;
}
