import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { node22Executable, spawnLogged, stopProcess, waitFor } from './process.js';

export interface StartedGcsEmulator {
  /** `http://127.0.0.1:<port>`: give it to the SDK as `apiEndpoint` or `STORAGE_EMULATOR_HOST`. */
  readonly apiEndpoint: string;
  /** Starts with `demo-`, so the emulator never calls Google APIs. */
  readonly projectId: string;
  readonly port: number;
  readonly pid: number;
  readonly logFile: string;
  /** Make `bucket` answer 503 to everything (an outage), or end that. */
  setBucketAvailable(bucket: string, available: boolean): Promise<void>;
  /** Stop the child by PID and remove its temporary folder (objects included). */
  stop(): Promise<void>;
}

export interface GcsEmulatorOptions {
  /** `demo-...` (default `demo-orthanc`). */
  readonly projectId?: string;
  /** Buckets that exist from the start. Others must be created (the SDK's `createBucket`). */
  readonly buckets?: readonly string[];
  /** Every request must carry `Authorization: Bearer <token>`, else 401 (tests of credentials). */
  readonly requiredBearerToken?: string;
  /** Buckets that answer 403 to every request (tests of permission errors). */
  readonly forbiddenBuckets?: readonly string[];
  readonly startTimeoutMs?: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** The compiled child script: next to this file in dist, or in dist when this runs from src under ts-jest. */
function childScript(): string {
  for (const candidate of [
    path.join(here, 'gcs-emulator-child.js'),
    path.join(here, '..', 'dist', 'gcs-emulator-child.js'),
  ]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`gcs-emulator-child.js not found next to ${here}: run \`pnpm build\` in tooling/servers`);
}

/**
 * Start firebase-tools' Cloud Storage emulator in a child process on 127.0.0.1 (a free port),
 * without the `firebase` CLI (which needs Java and downloads a jar): the storage module is
 * started directly, rules off, behind a front router that adds bucket endpoints, `/storage/v1`
 * paths and chunked resumable uploads. The child's TMPDIR (its blob store) is a fresh folder.
 */
export async function startGcsEmulator(options: GcsEmulatorOptions = {}): Promise<StartedGcsEmulator> {
  const projectId = options.projectId ?? 'demo-orthanc';
  if (!projectId.startsWith('demo-')) {
    throw new Error(
      `GCS emulator project id must start with "demo-" (else it calls Google APIs): ${projectId}`,
    );
  }
  const folder = await mkdtemp(path.join(tmpdir(), 'oos-gcs-'));
  const logFile = path.join(folder, 'gcs-emulator.log');
  const childTmp = path.join(folder, 'tmp');
  const childOptions = {
    projectId,
    buckets: options.buckets ?? [],
    requiredBearerToken: options.requiredBearerToken,
    forbiddenBuckets: options.forbiddenBuckets ?? [],
  };
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: folder,
    XDG_CONFIG_HOME: path.join(folder, 'config'),
    TMPDIR: childTmp,
    CI: 'true',
    NO_UPDATE_NOTIFIER: '1',
    FIREBASE_CLI_EXPERIMENTS: '',
  };
  await mkdir(childTmp, { recursive: true });
  const started = spawnLogged(
    node22Executable('the GCS emulator'),
    [childScript(), JSON.stringify(childOptions)],
    {
      logFile,
      env,
      cwd: folder,
    },
  );
  let exited = false;
  started.child.once('exit', () => (exited = true));
  let output = '';
  started.child.stdout?.on('data', (chunk: Buffer) => {
    if (output.length < 64 * 1024) output += chunk.toString('utf8');
  });
  const stop = async (): Promise<void> => {
    await stopProcess(started.pid);
    await rm(folder, { recursive: true, force: true });
  };
  try {
    const port = await waitFor(
      'the GCS emulator to listen',
      async () => {
        const match = /\{"port":(\d+)\}/.exec(output);
        if (match !== null) return Number(match[1]);
        return exited ? -1 : undefined;
      },
      options.startTimeoutMs ?? 30_000,
      50,
    );
    if (port < 0) throw new Error(`the GCS emulator exited at startup; see ${logFile}`);
    const apiEndpoint = `http://127.0.0.1:${port}`;
    const setBucketAvailable = async (bucket: string, available: boolean): Promise<void> => {
      const query = new URLSearchParams({ bucket, on: available ? '0' : '1' });
      const response = await fetch(`${apiEndpoint}/_oos/unavailable?${query}`, { method: 'POST' });
      if (response.status !== 204) throw new Error(`GCS emulator outage switch answered ${response.status}`);
    };
    return { apiEndpoint, projectId, port, pid: started.pid, logFile, setBucketAvailable, stop };
  } catch (error) {
    await stopProcess(started.pid);
    throw error;
  }
}
