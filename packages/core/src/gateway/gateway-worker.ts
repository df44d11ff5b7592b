// One worker of the gateway: opens its own storage stack and serves the shim's connections on its
// own Unix socket. Worker 0 is the main thread itself (run-gateway.ts), which also starts the
// worker threads 1..N-1 and supervises them; each of those runs serveWorker.
import { writeSync } from 'node:fs';
import { chmod, stat, unlink } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { parentPort } from 'node:worker_threads';
import { parseProviderSettings } from '../config/parse.js';
import type { ProviderId, ProviderSettings } from '../config/settings.js';
import { installProcessBudgets, type ProcessBudgetMemories } from '../crypto/byte-budget.js';
import { ConfigurationError } from '../errors.js';
import { createGatewayServices } from '../hybrid/services.js';
import type { Logger } from '../logging.js';
import type { ObjectStorage } from '../storage/contract.js';
import type { GatewayEnvelope } from './envelope.js';
import { serveConnection } from './serve-connection.js';
import { createStderrLogger, redirectConsole, routeProcessWarnings } from './stderr-logger.js';
import type { StorageOpener } from './run-gateway.js';

/** What the main thread gives each worker (structured-cloned, never on a command line). */
export interface WorkerData {
  readonly kind: 'orthanc-object-storage-gateway-worker';
  readonly index: number;
  readonly socketPath: string;
  readonly envelope: GatewayEnvelope;
  readonly baseDirectory: string | undefined;
  readonly budgets: ProcessBudgetMemories;
}

/** Worker to main thread. */
export type WorkerReport =
  | { type: 'ready'; rangeReads: boolean; restRoutes: string[]; jobTypes: string[]; socketInode: number }
  | { type: 'failed'; message: string };

/** Main thread to worker. */
export type WorkerCommand = { type: 'stop' };

export function isWorkerData(value: unknown): value is WorkerData {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { kind?: unknown }).kind === 'orthanc-object-storage-gateway-worker'
  );
}

/**
 * The worker's log: written straight to the process's stderr (fd 2), synchronously, so lines
 * reach the shim even when the thread dies right after; a line up to the pipe's atomic size
 * (4 KiB) never mixes with another thread's.
 */
function workerLogger(): Logger & { quiet: boolean } {
  const log = createStderrLogger((line) => writeSync(2, line));
  const worker = {
    quiet: false,
    info: (message: string) => {
      if (!worker.quiet) log.info(message);
    },
    warn: log.warn,
    error: log.error,
  };
  return worker;
}

/** A storage stack serving one socket: in a worker thread, or in the main thread (worker 0). */
export interface SocketService {
  readonly ready: WorkerReady;
  /** Closes the socket, its connections and the storage; unlinks the socket if still ours. */
  stop(): Promise<void>;
}

export type WorkerReady = Extract<WorkerReport, { type: 'ready' }>;

/**
 * Builds the storage stack (`settings` already validated) and serves `socketPath` (0600) with it.
 * Throws, having cleaned up, when it cannot.
 */
export async function serveSocket<P extends ProviderId>(
  open: StorageOpener<P>,
  settings: Extract<ProviderSettings, { provider: P }>,
  socketPath: string,
  log: Logger,
): Promise<SocketService> {
  const sockets = new Set<Socket>();
  let storage: ObjectStorage | undefined;
  let socketInode: number | undefined;
  let server: ReturnType<typeof createServer> | undefined;
  const stop = async () => {
    server?.close();
    for (const socket of sockets) socket.destroy();
    await storage?.close().catch(() => {});
    // Unlink our socket only: a restarted gateway may already listen on the same path.
    const current = await stat(socketPath).catch(() => undefined);
    if (socketInode !== undefined && current?.ino === socketInode) await unlink(socketPath).catch(() => {});
  };
  try {
    const stack = await open(settings, log);
    storage = stack.storage;
    const services = createGatewayServices(stack, log);
    const invoke = services.invoke.bind(services);
    const served = storage;
    await unlink(socketPath).catch(() => {}); // stale socket of a previous gateway
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      void serveConnection(socket, served, log, invoke);
    });
    const listening = server;
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen({ path: socketPath, backlog: 511 }, () => {
        listening.off('error', reject);
        resolve();
      });
    });
    listening.on('error', (error) => log.error(`gateway: socket server error: ${error.message}`));
    await chmod(socketPath, 0o600);
    socketInode = (await stat(socketPath)).ino;
    return {
      ready: {
        type: 'ready',
        rangeReads: served.supportsVerifiedRangeReads,
        ...services.announcement,
        socketInode,
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Worker threads 1..N-1 (the main thread serves worker 0's socket itself). */
export async function serveWorker<P extends ProviderId>(
  provider: P,
  open: StorageOpener<P>,
  data: WorkerData,
): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('a gateway worker runs in a worker thread');
  const report = (message: WorkerReport) => port.postMessage(message);
  const log = workerLogger();
  redirectConsole(log);
  routeProcessWarnings(log);
  // Start-up lines (the storage stack, ...) were said by worker 0, in the main thread.
  log.quiet = true;
  installProcessBudgets(data.budgets);

  let service: SocketService | undefined;
  let stopping = false;
  const stop = async () => {
    stopping = true;
    await service?.stop();
    port.close();
  };
  port.on('message', (command: WorkerCommand) => {
    if (command.type === 'stop') void stop();
  });

  try {
    // Settings were checked (and their warnings logged) by the main thread.
    const { settings } = parseProviderSettings(provider, data.envelope.configuration, {
      baseDirectory: data.baseDirectory,
    });
    if (settings === undefined)
      throw new ConfigurationError(`${data.envelope.section} section missing: plugin disabled`);
    service = await serveSocket(open, settings, data.socketPath, log);
    if (stopping) {
      await service.stop();
      return;
    }
    log.quiet = false;
    report(service.ready);
  } catch (error) {
    // Configuration errors carry their own clear message; never print stacks (or secrets).
    report({ type: 'failed', message: startupFailure(error) });
    await stop();
  }
}

/** A start-up error as the handshake shows it: never a stack (nor secrets). */
export function startupFailure(error: unknown): string {
  return error instanceof ConfigurationError
    ? error.message
    : `gateway start-up failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
}
