import { chmod, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { parseProviderSettings } from '../config/parse.js';
import type { ProviderId, ProviderSettings } from '../config/settings.js';
import { ConfigurationError } from '../errors.js';
import type { Logger } from '../logging.js';
import { createGatewayServices } from '../hybrid/services.js';
import { createStorageStack, type StorageStack } from '../storage/compose.js';
import type { BucketClient, ObjectStorage } from '../storage/contract.js';
import { readEnvelope } from './envelope.js';
import { serveConnection } from './serve-connection.js';
import { createStderrLogger, redirectConsole } from './stderr-logger.js';

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
    }
  | { status: 'error'; message: string };

const STOP_GRACE_MS = 3000;

/** Entry point of a gateway process started by the native shim. */
export async function runGateway<P extends ProviderId>(definition: ProviderDefinition<P>): Promise<void> {
  await serveGateway(definition.provider, async (settings, log) => {
    const client = await definition.createBucketClient(settings, { log });
    return createStorageStack(settings, client, log);
  });
}

/**
 * Reads the configuration envelope from stdin, opens the storage, serves the shim's socket
 * and answers the handshake. Exits when stdin ends (Orthanc stopped or died).
 */
export async function serveGateway<P extends ProviderId>(provider: P, open: StorageOpener<P>): Promise<void> {
  const log = createStderrLogger();
  redirectConsole(log);
  routeProcessWarnings(log);
  const handshake = (answer: Handshake) => process.stdout.write(`${JSON.stringify(answer)}\n`);
  const state: { server?: Server; storage?: ObjectStorage; socketPath?: string; socketInode?: number } = {};
  const sockets = new Set<Socket>();

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(code), STOP_GRACE_MS).unref();
    state.server?.close();
    for (const socket of sockets) socket.destroy();
    await state.storage?.close().catch(() => {});
    // Unlink our socket only: a restarted gateway may already listen on the same path.
    // The private directory belongs to the shim, which removes it when Orthanc stops.
    if (state.socketPath !== undefined && state.socketInode !== undefined) {
      const current = await stat(state.socketPath).catch(() => undefined);
      if (current?.ino === state.socketInode) await unlink(state.socketPath).catch(() => {});
    }
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop(0));
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
    const parsed = parseProviderSettings(provider, envelope.configuration, {
      baseDirectory: await orthancBaseDirectory(envelope.configurationPath),
    });
    for (const warning of parsed.warnings) log.warn(warning);
    const settings = parsed.settings;
    if (settings === undefined)
      throw new ConfigurationError(`${envelope.section} section missing: plugin disabled`);

    const stack = await open(settings, log);
    state.storage = stack.storage;
    const services = createGatewayServices(stack, log);
    const invoke = services.invoke.bind(services);
    await unlink(envelope.socketPath).catch(() => {}); // stale socket of a previous gateway
    const storage = state.storage;
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      void serveConnection(socket, storage, log, invoke);
    });
    state.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: envelope.socketPath, backlog: 511 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => log.error(`gateway: socket server error: ${error.message}`));
    await chmod(envelope.socketPath, 0o600);
    state.socketPath = envelope.socketPath;
    state.socketInode = (await stat(envelope.socketPath)).ino;
    handshake({
      status: 'ready',
      rangeReads: storage.supportsVerifiedRangeReads,
      callTimeoutSeconds: settings.gatewayCallTimeoutSeconds,
      ...services.announcement,
    });
  } catch (error) {
    // Configuration errors carry their own clear message; never print stacks (or secrets).
    const message =
      error instanceof ConfigurationError
        ? error.message
        : `gateway start-up failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
    handshake({ status: 'error', message });
    await stop(1);
  }
}

/** The folder Orthanc resolves relative paths against: the configuration file's, or the folder given. */
async function orthancBaseDirectory(configurationPath: string | undefined): Promise<string | undefined> {
  if (!configurationPath) return undefined;
  const info = await stat(configurationPath).catch(() => undefined);
  return info?.isDirectory() ? configurationPath : dirname(configurationPath);
}

/**
 * Node prints process warnings (e.g. an SDK's end-of-support notice) as bare stderr lines, which
 * the shim would log as errors: log them as warnings instead, through our own line format.
 */
function routeProcessWarnings(log: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => log.warn(`${warning.name}: ${warning.message}`));
}
