// Soak benchmark: soak.ts (mixed creates, reads, range reads, removes, 16 at a time, through the
// native shim) for every backend, encryption off and on, 10,000 operations each by default
// (OOS_SOAK_OPERATIONS). JSON to stdout and bench-results/soak.json: operations, mismatches, the
// gateway's peak RSS per quarter, descriptors, CPU per operation. Figures, never assertions.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type E2EBackend, writeMasterKey } from '../backends/backend.js';
import { awsBackend } from '../backends/aws.js';
import { azureBackend } from '../backends/azure.js';
import { googleBackend } from '../backends/google.js';
import { runSoak, soakConfiguration, type SoakResult } from '../soak.js';
import { cleanUpOnSignal, machineInfo, round, writeBenchReport } from './bench-common.js';

const OPERATIONS = Number(process.env['OOS_SOAK_OPERATIONS'] ?? 10_000);
const PROVIDERS = (process.env['OOS_SOAK_PROVIDERS'] ?? 'aws,azure,google').split(',');

async function main(): Promise<void> {
  const backends: E2EBackend[] = [awsBackend(), azureBackend(), googleBackend()].filter((backend) =>
    PROVIDERS.includes(backend.name),
  );
  const results: (SoakResult & { backend: string; encrypted: boolean; rssLastToFirst: number })[] = [];
  const started = performance.now();
  const workDirs: string[] = [];
  cleanUpOnSignal(() => workDirs);
  for (const backend of backends) {
    const workDir = mkdtempSync(path.join(os.tmpdir(), `oos-soak-bench-${backend.name}-`));
    workDirs.push(workDir);
    const key = writeMasterKey(workDir, 1);
    try {
      await backend.setUp(path.join(workDir, 'backend'));
      for (const encrypted of [false, true]) {
        const store = await backend.createStore(encrypted ? 'soak-encrypted' : 'soak');
        const result = await runSoak({
          plugin: backend.artifactPath,
          workDir,
          operations: OPERATIONS,
          configuration: soakConfiguration(backend, store, encrypted ? key : undefined),
        });
        const rssLastToFirst = round(result.rssPeakMiB[3] / result.rssPeakMiB[0], 3);
        results.push({ backend: backend.name, encrypted, ...result, rssLastToFirst });
        console.error(`soak ${backend.name} encrypted=${encrypted}: ${JSON.stringify(result)}`);
      }
    } finally {
      await backend.tearDown();
      rmSync(workDir, { recursive: true, force: true });
    }
  }
  const report = {
    bench: 'soak',
    machine: machineInfo(),
    workload: {
      operationsPerRun: OPERATIONS,
      concurrency: 16,
      mix: 'create 35 %, whole read 30 %, range read 20 % (whole read when range reads are off), remove 15 %',
      sizes: 'log-uniform 1 KiB to 1 MiB; every read compared byte for byte',
      criteria:
        'mismatches 0; rssPeakMiB[3] <= 1.1 x rssPeakMiB[0]; descriptors.last <= descriptors.first + 8',
    },
    results,
    benchSeconds: round((performance.now() - started) / 1000, 1),
  };
  writeBenchReport('soak', report);
}

await main();
