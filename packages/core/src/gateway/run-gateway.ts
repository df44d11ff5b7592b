import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { workerData } from 'node:worker_threads';
import { parseProviderSettings } from '../config/parse.js';
import type { ProviderId, ProviderSettings } from '../config/settings.js';
import { ConfigurationError } from '../errors.js';
import type { Logger } from '../logging.js';
import { createProcessBudgetMemories, installProcessBudgets } from '../crypto/byte-budget.js';
import { createStorageStack, type StorageStack } from '../storage/compose.js';
import type { BucketClient } from '../storage/contract.js';
import { readEnvelope } from './envelope.js';
import {
  isWorkerData,
  serveSocket,
  serveWorker,
  startupFailure,
  type SocketService,
} from './gateway-worker.js';
import { GatewayWorker, WorkerStartError } from './worker-supervision.js';
import { createStderrLogger, redirectConsole, routeProcessWarnings } from './stderr-logger.js';

/** What each provider package gives the gateway: how to open its bucket client. */
export interface ProviderDefinition<P extends ProviderId> {
  readonly provider: P;
  /**
   * Open the client and do any startup work (e.g. create the container). Throw
   * ConfigurationError for a definite configuration problem: Orthanc then refuses to start.
   */
  createBucketClient(
    settings: Extract<ProviderSettings, { provider: P }>,
    context: { readonly log: Logger },
  ): Promise<BucketClient>;
}

/** Builds the storage stack of a provider from its validated settings. */
export type StorageOpener<P extends ProviderId> = (
  settings: Extract<ProviderSettings, { provider: P }>,
  log: Logger,
) => Promise<StorageStack>;

/** Handshake line on stdout, read by the native shim. */
export type Handshake =
  | {
      status: 'ready';
      rangeReads: boolean;
      callTimeoutSeconds: number;
      /** REST routes (Orthanc's regular expressions) the shim registers and forwards here. */
      restRoutes: string[];
      /** Job types whose saved jobs the shim hands back here after a restart. */
      jobTypes: string[];
      /** One Unix socket per worker thread: the shim spreads its connections over them. */
      sockets: string[];
    }
  | { status: 'error'; message: string };

const STOP_GRACE_MS = 3000;

/** Entry point of a gateway process started by the native shim (and of each of its workers). */
export async function runGateway<P extends ProviderId>(definition: ProviderDefinition<P>): Promise<void> {
  await serveGateway(definition.provider, async (settings, log) => {
    const client = await definition.createBucketClient(settings, { log });
    return createStorageStack(settings, client, log);
  });
}

/**
 * In the process the shim started: reads the configuration envelope from stdin, serves worker 0's
 * socket in this main thread and starts `GatewayWorkers - 1` worker threads (each running this
 * same script, which lands in serveWorker) for the others, and answers the handshake once all of
 * them serve. `GatewayWorkers` 1 is therefore one thread, with no idle isolate beside it. Exits when
 * stdin ends (Orthanc stopped or died), and when a worker thread dies or this thread throws: the
 * shim then restarts the whole gateway with backoff.
 */
export async function serveGateway<P extends ProviderId>(provider: P, open: StorageOpener<P>): Promise<void> {
  if (isWorkerData(workerData)) return serveWorker(provider, open, workerData);
  const log = createStderrLogger();
  redirectConsole(log);
  routeProcessWarnings(log);
  const handshake = (answer: Handshake) => process.stdout.write(`${JSON.stringify(answer)}\n`);
  const workers: GatewayWorker[] = [];
  let own: SocketService | undefined;

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(code), STOP_GRACE_MS).unref();
    // Each worker closes its storage and unlinks its own socket.
    await Promise.all([own?.stop(), ...workers.map((worker) => worker.stop())]);
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop(0));
  // A bug in this thread's serving: one line (no stack, which may quote data), then the shim restarts us.
  process.on('uncaughtException', (error) => {
    log.error(`gateway crashed (${error.name}: ${error.message}); exiting: the plugin restarts the gateway`);
    process.exit(1);
  });
  // When NodeExecutable is a wrapper script, the shim's SIGKILL and PR_SET_PDEATHSIG reach the
  // wrapper, not us: leave when we are orphaned too.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void stop(0);
  }, 500);

  try {
    const envelope = await readEnvelope(process.stdin, () => void stop(0));
    if (envelope.provider !== provider) {
      throw new Error(
        `this gateway serves provider '${provider}', the shim asked for '${envelope.provider}'`,
      );
    }
    const baseDirectory = await orthancBaseDirectory(envelope.configurationPath);
    const parsed = parseProviderSettings(provider, envelope.configuration, { baseDirectory });
    for (const warning of parsed.warnings) log.warn(warning);
    const settings = parsed.settings;
    if (settings === undefined)
      throw new ConfigurationError(`${envelope.section} section missing: plugin disabled`);

    const budgets = createProcessBudgetMemories();
    installProcessBudgets(budgets);
    // Worker 0 first and alone, here, so start-up work (e.g. creating the container) happens once.
    own = await serveSocket(open, settings, envelope.socketPath, log);
    if (stopping) return;
    const others = await Promise.all(
      Array.from({ length: settings.gatewayWorkers - 1 }, (_, i) => {
        const worker = new GatewayWorker({
          kind: 'orthanc-object-storage-gateway-worker',
          index: i + 1,
          socketPath: workerSocketPath(envelope.socketPath, i + 1),
          envelope,
          baseDirectory,
          budgets,
        });
        workers.push(worker);
        return worker.ready;
      }),
    );
    for (const worker of workers) {
      void worker.exited.then((how) => {
        if (stopping) return;
        // Its share of the budgets may be held for good: the plugin restarts the whole gateway.
        log.error(`gateway worker ${worker.index} ${how}; exiting: the plugin restarts the gateway`);
        process.exit(1);
      });
    }
    const count = settings.gatewayWorkers;
    log.info(
      `gateway: ${count} worker thread${count > 1 ? 's' : ''} (GatewayWorkers), one socket each; the main thread is worker 0`,
    );
    handshake({
      status: 'ready',
      rangeReads: [own.ready, ...others].every((ready) => ready.rangeReads),
      callTimeoutSeconds: settings.gatewayCallTimeoutSeconds,
      restRoutes: own.ready.restRoutes,
      jobTypes: own.ready.jobTypes,
      sockets: [envelope.socketPath, ...workers.map((worker) => worker.socketPath)],
    });
  } catch (error) {
    // Configuration errors carry their own clear message; never print stacks (or secrets).
    const message = error instanceof WorkerStartError ? error.message : startupFailure(error);
    handshake({ status: 'error', message });
    await stop(1);
  }
}

/** Worker 0 listens on the path the shim chose; worker i on that path with `.i` appended. */
export function workerSocketPath(socketPath: string, index: number): string {
  return index === 0 ? socketPath : `${socketPath}.${index}`;
}

/** The folder Orthanc resolves relative paths against: the configuration file's, or the folder given. */
async function orthancBaseDirectory(configurationPath: string | undefined): Promise<string | undefined> {
  if (!configurationPath) return undefined;
  const info = await stat(configurationPath).catch(() => undefined);
  return info?.isDirectory() ? configurationPath : dirname(configurationPath);
}
