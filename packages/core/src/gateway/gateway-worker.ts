// One worker thread of the gateway: opens its own storage stack and serves the shim's connections
// on its own Unix socket. The main thread (run-gateway.ts) starts the workers and supervises them.
import { writeSync } from 'node:fs';
import { chmod, stat, unlink } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { parentPort } from 'node:worker_threads';
import { parseProviderSettings } from '../config/parse.js';
import type { ProviderId } from '../config/settings.js';
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
  // Start-up lines (the storage stack, ...) are the same in every worker: the first one says them.
  log.quiet = data.index > 0;
  installProcessBudgets(data.budgets);

  const sockets = new Set<Socket>();
  let storage: ObjectStorage | undefined;
  let socketInode: number | undefined;
  let server: ReturnType<typeof createServer> | undefined;
  const stop = async () => {
    server?.close();
    for (const socket of sockets) socket.destroy();
    await storage?.close().catch(() => {});
    // Unlink our socket only: a restarted gateway may already listen on the same path.
    const current = await stat(data.socketPath).catch(() => undefined);
    if (socketInode !== undefined && current?.ino === socketInode)
      await unlink(data.socketPath).catch(() => {});
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
    const stack = await open(settings, log);
    storage = stack.storage;
    const services = createGatewayServices(stack, log);
    const invoke = services.invoke.bind(services);
    const served = storage;
    await unlink(data.socketPath).catch(() => {}); // stale socket of a previous gateway
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      void serveConnection(socket, served, log, invoke);
    });
    const listening = server;
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen({ path: data.socketPath, backlog: 511 }, () => {
        listening.off('error', reject);
        resolve();
      });
    });
    listening.on('error', (error) => log.error(`gateway: socket server error: ${error.message}`));
    await chmod(data.socketPath, 0o600);
    socketInode = (await stat(data.socketPath)).ino;
    log.quiet = false;
    report({
      type: 'ready',
      rangeReads: served.supportsVerifiedRangeReads,
      ...services.announcement,
      socketInode,
    });
  } catch (error) {
    // Configuration errors carry their own clear message; never print stacks (or secrets).
    const message =
      error instanceof ConfigurationError
        ? error.message
        : `gateway start-up failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
    report({ type: 'failed', message });
    await stop();
  }
}
