// A large object round-trips through the built GCS client and core's storage stack (encryption off
// and on) in a child process whose peak RSS stays below the object's size: everything is streamed.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectBoundedMemoryRoundTrip, testEncryptionSettings } from '@orthanc-object-storage/conformance';
import { startGcsEmulator, type StartedGcsEmulator } from '@orthanc-object-storage/servers';

const MiB = 1024 * 1024;
const BUCKET = 'memory';
const SIZE_BYTES = 256 * MiB;
/**
 * About 120 MiB is Node 24 with the SDK loaded; one upload buffers one 8 MiB resumable chunk.
 * Measured: 213 to 234 MiB. Holding the object whole would need at least 256 + 120 MiB.
 */
const MAX_RSS_BYTES = 320 * MiB;

let emulator: StartedGcsEmulator;
let keyDir: string;

beforeAll(async () => {
  emulator = await startGcsEmulator({ buckets: [BUCKET] });
  keyDir = await mkdtemp(join(tmpdir(), 'oos-google-memory-key-'));
});

afterAll(async () => {
  await emulator?.stop();
  if (keyDir) await rm(keyDir, { recursive: true, force: true });
});

describe('Google Cloud Storage (emulator): memory', () => {
  const factoryModule = fileURLToPath(new URL('./__tests__/memory-storage-factory.mjs', import.meta.url));
  const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));

  for (const mode of ['off', 'on'] as const) {
    it(`round-trips a ${SIZE_BYTES / MiB} MiB object, encryption ${mode}, with peak RSS under ${MAX_RSS_BYTES / MiB} MiB`, async () => {
      if (!existsSync(built))
        throw new Error(`${built} is missing: run "pnpm build" in packages/google first`);
      // Settings hold the key's path, never the key: fine to pass through IPC.
      const encryption = mode === 'on' ? await testEncryptionSettings(keyDir) : undefined;
      const result = await expectBoundedMemoryRoundTrip({
        factoryModule,
        factoryOptions: {
          apiEndpoint: emulator.apiEndpoint,
          bucketName: BUCKET,
          encryption: encryption ?? null,
        },
        sizeBytes: SIZE_BYTES,
        maxRssBytes: MAX_RSS_BYTES,
      });
      console.log(
        JSON.stringify({
          googleBoundedMemoryRoundTrip: {
            encryption: mode,
            sizeBytes: SIZE_BYTES,
            peakRssMiB: Math.round(result.peakRssBytes / MiB),
            createSeconds: Number(result.createSeconds.toFixed(2)),
            readSeconds: Number(result.readSeconds.toFixed(2)),
          },
        }),
      );
    }, 600_000);
  }
});
