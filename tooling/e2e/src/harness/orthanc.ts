import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { applyEdits, modify, parse as parseJsonc } from 'jsonc-parser';
import { freePort, isAlive, spawnLogged, stopProcess } from '@orthanc-object-storage/servers';
import { chrootCommand, removeSharedMountPoints } from './chroot.js';
import { ensureOrthancInstalled, ORTHANC_EXECUTABLE } from './install.js';
import { OrthancClient } from './rest.js';

export type OrthancConfiguration = Record<string, unknown>;

export interface OrthancOptions {
  /** Work folder: holds configuration.json, orthanc.log, the index and Orthanc's own storage. */
  readonly workDir: string;
  /** Extra configuration keys (plugin sections, StorageCompression, ...), merged over the defaults. */
  readonly configuration?: OrthancConfiguration;
  /** Plugin libraries to load. */
  readonly plugins?: readonly string[];
  /** Fixed HTTP port; a free one when undefined. */
  readonly httpPort?: number;
  /** Log at info level (`--verbose`); the plugin's per-call logs are at info level. */
  readonly verbose?: boolean;
  /**
   * A configuration file written by someone else (Debian's /etc/orthanc/orthanc.json, what
   * `Orthanc --config=FILE` writes), comments kept: only the ports, the directories, "Plugins"
   * (ours appended) and the keys of `configuration` are changed. Default: a minimal file of ours.
   */
  readonly baseConfiguration?: string;
  /** Orthanc's environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  /** Orthanc's working directory (default: the work folder). */
  readonly cwd?: string;
  /**
   * Run the Orthanc of this chroot (see chroot.ts) instead of the host's. `shared` host folders
   * are seen at the same path inside: they must hold the work folder, the plugin and key files.
   */
  readonly chroot?: { readonly root: string; readonly shared: readonly string[] };
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A Debian Orthanc on 127.0.0.1 with a generated configuration; stopped by PID. */
export class OrthancServer {
  readonly workDir: string;
  readonly configPath: string;
  readonly logFile: string;
  readonly storageDirectory: string;
  readonly httpPort: number;
  readonly client: OrthancClient;
  private child: ChildProcess | undefined;
  private exited: Promise<ExitStatus> | undefined;
  private readonly verbose: boolean;
  private readonly env: NodeJS.ProcessEnv | undefined;
  private readonly cwd: string;
  private readonly chroot: OrthancOptions['chroot'];

  private constructor(options: OrthancOptions, httpPort: number, dicomPort: number) {
    this.workDir = options.workDir;
    this.configPath = path.join(options.workDir, 'configuration.json');
    this.logFile = path.join(options.workDir, 'orthanc.log');
    this.storageDirectory = path.join(options.workDir, 'OrthancStorage');
    this.httpPort = httpPort;
    this.verbose = options.verbose ?? true;
    this.client = new OrthancClient(`http://127.0.0.1:${httpPort}`);
    this.env = options.env;
    this.cwd = options.cwd ?? options.workDir;
    this.chroot = options.chroot;
    mkdirSync(options.workDir, { recursive: true });
    if (options.baseConfiguration !== undefined) {
      writeFileSync(
        this.configPath,
        editConfiguration(options.baseConfiguration, {
          StorageDirectory: this.storageDirectory,
          IndexDirectory: path.join(options.workDir, 'OrthancIndex'),
          HttpPort: httpPort,
          DicomPort: dicomPort,
          Plugins: [
            ...(asArray(parseJsonc(options.baseConfiguration)?.Plugins) ?? []),
            ...(options.plugins ?? []),
          ],
          ...options.configuration,
        }),
      );
      return;
    }
    const configuration: OrthancConfiguration = {
      Name: 'orthanc-object-storage-e2e',
      StorageDirectory: this.storageDirectory,
      IndexDirectory: path.join(options.workDir, 'OrthancIndex'),
      HttpPort: httpPort,
      RemoteAccessAllowed: false,
      AuthenticationEnabled: false,
      DicomServerEnabled: false,
      HttpTimeout: 120,
      Plugins: [...(options.plugins ?? [])],
      ...options.configuration,
    };
    writeFileSync(this.configPath, JSON.stringify(configuration, null, 2));
  }

  /** Write the configuration; the server is not started yet. */
  static async create(options: OrthancOptions): Promise<OrthancServer> {
    if (options.chroot === undefined) ensureOrthancInstalled();
    return new OrthancServer(options, options.httpPort ?? (await freePort()), await freePort());
  }

  /** Create, start and wait until /system answers. */
  static async start(options: OrthancOptions): Promise<OrthancServer> {
    const server = await OrthancServer.create(options);
    await server.start();
    return server;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  /** Spawn Orthanc without waiting: for configurations where Orthanc must refuse to start. */
  spawn(): void {
    if (this.running) throw new Error(`Orthanc is already running (pid ${this.pid})`);
    const args = [...(this.verbose ? ['--verbose'] : []), this.configPath];
    this.appendLog(`\n===== e2e: starting Orthanc ${args.join(' ')} =====\n`);
    const command =
      this.chroot === undefined
        ? { command: ensureOrthancInstalled(), args }
        : chrootCommand(this.chroot.root, this.chroot.shared, ORTHANC_EXECUTABLE, args);
    const started = spawnLogged(command.command, command.args, {
      logFile: this.logFile,
      cwd: this.cwd,
      ...(this.env && { env: this.env }),
    });
    const child = started.child;
    this.child = child;
    // Exited and its last log lines written: tests read the log right after.
    this.exited = new Promise<ExitStatus>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    ).then(async (status) => {
      await started.logWritten;
      return status;
    });
  }

  /** Spawn and wait until /system answers; fails fast with the log's tail if Orthanc exits. */
  async start(timeoutMs = 30_000): Promise<void> {
    this.spawn();
    const exited = this.exited!;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await Promise.race([exited, sleep(100).then(() => undefined)]);
      if (status !== undefined) {
        throw new Error(
          `Orthanc exited during startup (code ${status.code}, signal ${status.signal}); log tail:\n${this.logTail()}`,
        );
      }
      if (await this.client.isUp()) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(
          `Orthanc did not answer /system within ${timeoutMs} ms; log tail:\n${this.logTail()}`,
        );
      }
    }
  }

  /** Resolves with the exit status once the current process ends. */
  async waitForExit(timeoutMs = 30_000): Promise<ExitStatus> {
    if (this.exited === undefined) throw new Error('Orthanc was never started');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>(
      (resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)),
    );
    const status = await Promise.race([this.exited, timedOut]).finally(() => clearTimeout(timer));
    if (status === undefined) throw new Error(`Orthanc (pid ${this.pid}) still runs after ${timeoutMs} ms`);
    return status;
  }

  /** SIGTERM, then SIGKILL after the grace period. */
  async stop(graceMs = 15_000): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || !this.running) return;
    await stopProcess(pid, graceMs);
    await this.exited;
    if (this.chroot !== undefined) removeSharedMountPoints(this.chroot.root, this.chroot.shared);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** kill -9, as a crash would. */
  async kill9(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || !this.running) return;
    process.kill(pid, 'SIGKILL');
    await this.exited;
    while (isAlive(pid)) await sleep(20);
  }

  readLog(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * Wait until the log holds a line containing every one of `parts`. Orthanc's log reaches the
   * file through a pipe, so a line can land just after the HTTP answer of the call that logged it.
   * Returns whether it came within `timeoutMs`; the caller asserts on the log either way.
   */
  async waitForLogLine(parts: string[], timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (
        this.readLog()
          .split('\n')
          .some((line) => parts.every((part) => line.includes(part)))
      )
        return true;
      if (Date.now() >= deadline) return false;
      await sleep(100);
    }
  }

  logTail(lines = 40): string {
    return this.readLog().split('\n').slice(-lines).join('\n');
  }

  private appendLog(text: string): void {
    writeFileSync(this.logFile, text, { flag: 'a' });
  }
}

/** `text` (JSON with comments) with each top-level key set to its value, comments kept. */
export function editConfiguration(text: string, values: OrthancConfiguration): string {
  let edited = text;
  for (const [key, value] of Object.entries(values)) {
    edited = applyEdits(
      edited,
      modify(edited, [key], value, { formattingOptions: { insertSpaces: true, tabSize: 2 } }),
    );
  }
  return edited;
}

function asArray(value: unknown): unknown[] | undefined {
  return Array.isArray(value) ? value : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
