// Drives shim-host.c: a fake Orthanc host that loads a built plugin library, so tests reach the
// native shim and its gateway exactly as Orthanc does, with many storage calls in flight.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { stopProcess } from '@orthanc-object-storage/servers';
import { findGatewayPids } from './proc.js';
import { repoRoot } from './repo.js';

/** Orthanc's content types the tests use. */
export const CONTENT_DICOM = 1;

/** What one storage callback returned (rc 0 = OrthancPluginErrorCode_Success). */
export interface ShimCallResult {
  readonly rc: number;
  readonly ms: number;
  readonly size: number;
  /** For reads that succeeded: whether the bytes are the content of their seed. */
  readonly match: boolean | null;
  /** CPU of the calling thread inside the plugin's callback (the shim's share of the host), ms. */
  readonly pluginCpuMs: number;
  /** CPU of the calling thread in the host's own work around it (checking the bytes read), ms. */
  readonly checkCpuMs: number;
}

let compiled: string | undefined;

/** Compiles the host once per process (needs cc and Debian's orthanc-dev headers). */
export function shimHostBinary(): string {
  if (compiled !== undefined) return compiled;
  const source = path.join(repoRoot(), 'tooling', 'e2e', 'src', 'harness', 'shim-host.c');
  const output = path.join(mkdtempSync(path.join(os.tmpdir(), 'oos-shim-host-')), 'shim-host');
  execFileSync('cc', [
    '-O2',
    '-Wall',
    '-Wextra',
    '-Werror',
    '-pthread',
    '-I/usr/include/orthanc',
    `-I${path.join(repoRoot(), 'packages', 'core', 'native', 'testing')}`,
    '-o',
    output,
    source,
    '-ldl',
  ]);
  compiled = output;
  return output;
}

export interface ShimHostOptions {
  /** The plugin library, e.g. packages/aws/dist/plugin/libOrthancAwsS3Storage.so. */
  readonly plugin: string;
  /** Orthanc's whole configuration (the plugin's section included). */
  readonly configuration: Record<string, unknown>;
  /** Folder for configuration.json. */
  readonly workDir: string;
  /** Calls run at once, as Orthanc's HTTP threads would (default 16). */
  readonly threads?: number;
  /** Variables added to the host's environment (e.g. TMPDIR, where the shim puts its sockets). */
  readonly env?: Record<string, string>;
}

/** A running fake host. `ready` is false when the plugin refused to start (see `log`). */
export class ShimHost {
  readonly log: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly pending = new Map<
    number,
    { resolve: (result: ShimCallResult) => void; reject: (error: Error) => void }
  >();
  private nextId = 1;
  private hello: { ready: boolean; rangeReads: boolean } | undefined;

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        // Calls in flight get no answer from a host that is gone.
        for (const { reject } of this.pending.values()) reject(new Error(`the shim host exited (${code})`));
        this.pending.clear();
        resolve(code);
      }),
    );
  }

  static async start(options: ShimHostOptions): Promise<ShimHost> {
    const configPath = path.join(options.workDir, `shim-host-${process.pid}-${Date.now()}.json`);
    writeFileSync(configPath, JSON.stringify(options.configuration), { mode: 0o600 });
    const child = spawn(shimHostBinary(), [options.plugin, configPath, String(options.threads ?? 16)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env }, // Jest's environment, e.g. STORAGE_EMULATOR_HOST
    });
    const host = new ShimHost(child);
    createInterface({ input: child.stderr! }).on('line', (line) => host.log.push(line));
    const helloReceived = new Promise<void>((resolve) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (host.hello === undefined) {
          const hello = JSON.parse(line) as { ready: boolean; rangeReads?: boolean };
          host.hello = { ready: hello.ready, rangeReads: hello.rangeReads === true };
          resolve();
          return;
        }
        const result = JSON.parse(line) as ShimCallResult & { id: number };
        host.pending.get(result.id)?.resolve(result);
        host.pending.delete(result.id);
      });
      void host.exited.then(() => resolve());
    });
    await helloReceived;
    if (host.hello === undefined) {
      await host.exited;
      await new Promise((resolve) => setImmediate(resolve)); // let the last log lines arrive
    }
    return host;
  }

  get ready(): boolean {
    return this.hello?.ready === true;
  }

  get rangeReads(): boolean {
    return this.hello?.rangeReads === true;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The gateway process the plugin started (its child whose command line names gateway.mjs). */
  gatewayPids(): number[] {
    return findGatewayPids(this.pid);
  }

  private call(format: (id: number) => string): Promise<ShimCallResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.child.exitCode !== null || !this.child.stdin!.writable) {
        reject(new Error('the shim host has exited'));
        return;
      }
      this.pending.set(id, { resolve, reject });
      this.child.stdin!.write(`${format(id)}\n`);
    });
  }

  create(uuid: string, size: number, seed: number, type = CONTENT_DICOM): Promise<ShimCallResult> {
    return this.call((id) => `C ${id} ${uuid} ${type} ${size} ${seed}`);
  }

  readWhole(uuid: string, size: number, seed: number, type = CONTENT_DICOM): Promise<ShimCallResult> {
    return this.call((id) => `R ${id} ${uuid} ${type} ${size} ${seed}`);
  }

  readRange(
    uuid: string,
    offset: number,
    length: number,
    seed: number,
    type = CONTENT_DICOM,
  ): Promise<ShimCallResult> {
    return this.call((id) => `G ${id} ${uuid} ${type} ${offset} ${length} ${seed}`);
  }

  remove(uuid: string, type = CONTENT_DICOM): Promise<ShimCallResult> {
    return this.call((id) => `D ${id} ${uuid} ${type}`);
  }

  /** Lets the calls in flight finish, finalizes the plugin (which stops its gateway), exits. */
  async stop(graceMs = 30_000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.stdin!.writable) this.child.stdin!.end('Q\n');
    const timer = setTimeout(() => void stopProcess(this.pid, 5000), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
