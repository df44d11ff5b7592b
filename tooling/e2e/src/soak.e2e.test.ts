// Soak through the native shim against every backend, encryption off and on (see soak.ts).
// CI runs a short version; OOS_SOAK_OPERATIONS=10000 (or `pnpm bench`) runs the long one.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type E2EBackend, writeMasterKey, type MasterKeyFile } from './backends/backend.js';
import { awsBackend } from './backends/aws.js';
import { azureBackend } from './backends/azure.js';
import { googleBackend } from './backends/google.js';
import { runSoak, soakConfiguration } from './soak.js';

const OPERATIONS = Number(process.env.OOS_SOAK_OPERATIONS ?? 400);

describe.each([
  ['aws', awsBackend()],
  ['azure', azureBackend()],
  ['google', googleBackend()],
] as [string, E2EBackend][])('soak through the shim: %s', (name, backend) => {
  let workDir: string;
  let key: MasterKeyFile;

  beforeAll(async () => {
    workDir = mkdtempSync(path.join(os.tmpdir(), `oos-soak-${name}-`));
    key = writeMasterKey(workDir, 1);
    await backend.setUp(path.join(workDir, 'backend'));
  }, 300_000);

  afterAll(async () => {
    await backend.tearDown();
    rmSync(workDir, { recursive: true, force: true });
  }, 120_000);

  test.each([false, true])(
    `${OPERATIONS} mixed operations, 16 at a time, encryption %s`,
    async (encrypted) => {
      const store = await backend.createStore(encrypted ? 'soak-encrypted' : 'soak');
      const result = await runSoak({
        plugin: backend.artifactPath,
        workDir,
        operations: OPERATIONS,
        configuration: soakConfiguration(backend, store, encrypted ? key : undefined),
      });
      console.log(`soak ${name}, encryption ${encrypted}: ${JSON.stringify(result)}`);
      expect(result.failures).toEqual([]);
      expect(result.mismatches).toBe(0);
      // Nothing an operator would see as a problem in Orthanc's log (an SDK warning, a retry).
      expect(result.problems).toEqual([]);
      expect(result.operations).toBe(OPERATIONS);
      // The short CI run is too short for a memory trend; the long run checks it (see README).
      if (OPERATIONS >= 4000) expect(result.rssPeakMiB[3]).toBeLessThanOrEqual(result.rssPeakMiB[0] * 1.1);
      // Pools (shim connections, HTTP agents) are warm after the first quarter: a leak would grow
      // with every operation, far beyond a few pooled sockets.
      expect(result.descriptors.last).toBeLessThanOrEqual(result.descriptors.first + 8);
    },
    1_800_000,
  );
});
