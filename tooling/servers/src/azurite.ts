import { createRequire } from 'node:module';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { node22Executable, spawnLogged, stopProcess, waitFor } from './process.js';

/** The public Azure Storage development account: documented by Microsoft, not a secret. */
export const AZURITE_ACCOUNT_NAME = 'devstoreaccount1';
export const AZURITE_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface StartedAzurite {
  /** `http://127.0.0.1:<port>/devstoreaccount1` */
  readonly blobEndpoint: string;
  readonly connectionString: string;
  readonly accountName: string;
  readonly accountKey: string;
  readonly port: number;
  /** Where Azurite keeps its data; survives `stop()` so a restart on it sees the same blobs. */
  readonly location: string;
  readonly logFile: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface AzuriteOptions {
  /** Data folder (default: a new temporary folder, removed by `stop()`). Pass one to restart on the same data. */
  readonly location?: string;
  /** Port to bind on 127.0.0.1 (default 0: the kernel picks a free one). */
  readonly port?: number;
  readonly startTimeoutMs?: number;
  /** Serve https with this PEM certificate and key (needed for OAuth). */
  readonly tls?: { readonly certPath: string; readonly keyPath: string };
  /** Accept Azure AD bearer tokens (Azurite's "basic" check: lifetime, issuer, audience; no signature). */
  readonly oauth?: boolean;
}

const LISTENING_LINE = /successfully listens on https?:\/\/127\.0\.0\.1:(\d+)/;

function azuriteBlobMain(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
}

/**
 * Start Azurite's blob service on 127.0.0.1 with on-disk persistence. Telemetry off (it would
 * contact the internet) and the API version check off (the SDK is ahead of Azurite).
 */
export async function startAzurite(options: AzuriteOptions = {}): Promise<StartedAzurite> {
  if (options.oauth === true && options.tls === undefined) {
    throw new Error('Azurite accepts OAuth only over https: give tls too');
  }
  const ownsLocation = options.location === undefined;
  const location = options.location ?? (await mkdtemp(path.join(tmpdir(), 'oos-azurite-')));
  const logFile = path.join(location, 'azurite.log');
  const args = [
    azuriteBlobMain(),
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    String(options.port ?? 0),
    '--skipApiVersionCheck',
    '--disableTelemetry',
    '--silent',
    '--location',
    location,
  ];
  if (options.tls !== undefined) args.push('--cert', options.tls.certPath, '--key', options.tls.keyPath);
  if (options.oauth === true) {
    args.push('--oauth', 'basic');
  }
  const started = spawnLogged(node22Executable('Azurite'), args, { logFile, cwd: location });
  let exited = false;
  started.child.once('exit', () => (exited = true));
  // Read the port from this run's own stdout: the log file may hold earlier runs on the same location.
  let output = '';
  started.child.stdout?.on('data', (chunk: Buffer) => {
    if (output.length < 64 * 1024) output += chunk.toString('utf8');
  });

  let port: number;
  try {
    port = await waitFor(
      'Azurite to listen',
      async () => {
        if (exited) throw new Error(`Azurite exited during startup; see ${logFile}`);
        const match = LISTENING_LINE.exec(output);
        return match?.[1] === undefined ? undefined : Number(match[1]);
      },
      options.startTimeoutMs ?? 60_000,
      100,
    );
  } catch (error) {
    await stopProcess(started.pid);
    throw error;
  }

  const protocol = options.tls === undefined ? 'http' : 'https';
  const blobEndpoint = `${protocol}://127.0.0.1:${port}/${AZURITE_ACCOUNT_NAME}`;
  return {
    blobEndpoint,
    connectionString:
      `DefaultEndpointsProtocol=${protocol};AccountName=${AZURITE_ACCOUNT_NAME};` +
      `AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=${blobEndpoint};`,
    accountName: AZURITE_ACCOUNT_NAME,
    accountKey: AZURITE_ACCOUNT_KEY,
    port,
    location,
    logFile,
    pid: started.pid,
    async stop() {
      await stopProcess(started.pid);
      if (ownsLocation) await rm(location, { recursive: true, force: true });
    },
  };
}
