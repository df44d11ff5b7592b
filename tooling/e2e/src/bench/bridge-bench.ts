// Bridge benchmark: ingest and read-back rates of a real Orthanc with the plugin (core's
// file-system backend, plain and A1-encrypted) against the same Orthanc on its built-in storage.
// JSON to stdout and bench-results/bridge.json. Figures, never assertions.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { fileSystemBackend } from '../backends/filesystem.js';
import { reissue, type ReissuableFile } from '../harness/dicom/reuid.js';
import { OrthancServer, type OrthancConfiguration } from '../harness/orthanc.js';
import { mapConcurrent } from '../harness/parallel.js';
import { nodeExecutable, repoRoot } from '../harness/repo.js';
import {
  benchTemplates,
  measurement,
  median,
  round,
  type Measurement,
  machineInfo,
  workloadReport,
} from './bench-common.js';

const execFileAsync = promisify(execFile);

const CLIENTS = 4;
const COPIES = Number(process.env['OOS_BENCH_COPIES'] ?? 20);
const RUNS = Number(process.env['OOS_BENCH_RUNS'] ?? 3);

interface Variant {
  readonly name: string;
  readonly description: string;
  readonly plugins: string[];
  readonly configuration: (workDir: string) => OrthancConfiguration;
}

async function measureVariant(variant: Variant, sources: ReissuableFile[], workDir: string) {
  const orthanc = await OrthancServer.start({
    workDir,
    plugins: variant.plugins,
    verbose: false,
    configuration: variant.configuration(workDir),
  });
  try {
    // Warm-up: one instance per template, not timed.
    await mapConcurrent(sources, CLIENTS, (s) => orthanc.client.uploadBytes(reissue(s)));
    const work = Array.from({ length: COPIES }, () => sources).flat();
    const bytes = work.reduce((sum, s) => sum + s.bytes.length, 0);
    let started = performance.now();
    const ids = await mapConcurrent(
      work,
      CLIENTS,
      async (s) => (await orthanc.client.uploadBytes(reissue(s))).ID,
    );
    const ingest = measurement(work.length, bytes, (performance.now() - started) / 1000);

    // Orthanc serves recent reads from its cache: restart before reading back.
    await orthanc.restart();
    let readBytes = 0;
    started = performance.now();
    await mapConcurrent(ids, CLIENTS, async (id) => {
      await orthanc.client.download(
        `/instances/${id}/file`,
        new Writable({
          write(chunk: Buffer, _encoding, callback) {
            readBytes += chunk.length;
            callback();
          },
        }),
      );
    });
    const readBack = measurement(ids.length, readBytes, (performance.now() - started) / 1000);
    if (readBytes !== bytes)
      throw new Error(`${variant.name}: read back ${readBytes} bytes, uploaded ${bytes}`);
    return { ingest, readBack };
  } finally {
    await orthanc.stop();
  }
}

/** The bridge helper's per-call overhead benchmark, when core ships one. */
async function bridgeOverhead(): Promise<unknown> {
  const dir = path.join(repoRoot(), 'packages', 'core', 'dist', 'bench');
  const script = existsSync(dir)
    ? readdirSync(dir).find((name) => /^bridge-overhead\.(m?js)$/.test(name))
    : undefined;
  if (script === undefined)
    return { skipped: `no ${dir}/bridge-overhead.js (core's per-call overhead benchmark)` };
  const { stdout } = await execFileAsync(nodeExecutable(), [path.join(dir, script)], {
    cwd: path.join(repoRoot(), 'packages', 'core'),
    maxBuffer: 16 * 1024 * 1024,
    timeout: 600_000,
  });
  const text = stdout.trim();
  try {
    return JSON.parse(text.slice(text.indexOf('{')));
  } catch {
    return { output: text };
  }
}

async function main(): Promise<void> {
  const workRoot = mkdtempSync(path.join(os.tmpdir(), 'oos-bridge-bench-'));
  const backend = fileSystemBackend();
  const keyPath = path.join(workRoot, 'master-key-1.b64');
  writeFileSync(keyPath, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  const pluginSection = (workDir: string, encrypted: boolean): OrthancConfiguration => ({
    [backend.sectionName]: {
      NodeExecutable: nodeExecutable(),
      Directory: path.join(workDir, 'objects'),
      ...(encrypted && { StorageEncryption: { Enable: true, MasterKey: [1, keyPath] } }),
    },
  });
  const variants: Variant[] = [
    {
      name: 'builtin',
      description: "Orthanc's built-in file-system storage",
      plugins: [],
      configuration: () => ({}),
    },
    {
      name: 'plugin',
      description: "the plugin with core's file-system backend",
      plugins: [backend.artifactPath],
      configuration: (dir) => pluginSection(dir, false),
    },
    {
      name: 'pluginEncrypted',
      description: "the plugin with core's file-system backend and encryption (C1, the default format)",
      plugins: [backend.artifactPath],
      configuration: (dir) => pluginSection(dir, true),
    },
  ];
  const artifactMissing = !existsSync(backend.artifactPath);
  try {
    const { files, source } = await benchTemplates(workRoot);
    const runs: Record<string, Array<{ ingest: Measurement; readBack: Measurement }>> = {};
    for (let run = 0; run < RUNS; run++) {
      for (const variant of variants) {
        if (variant.plugins.length > 0 && artifactMissing) continue;
        const workDir = path.join(workRoot, `${variant.name}-${run}`);
        const result = await measureVariant(variant, files, workDir);
        (runs[variant.name] ??= []).push(result);
        rmSync(workDir, { recursive: true, force: true });
        console.error(
          `bridge-bench: run ${run + 1}/${RUNS} ${variant.name}: ingest ${result.ingest.instancesPerSecond}/s, ` +
            `read-back ${result.readBack.instancesPerSecond}/s`,
        );
      }
    }
    const summary = Object.fromEntries(
      Object.entries(runs).map(([name, results]) => [
        name,
        {
          description: variants.find((v) => v.name === name)!.description,
          ingestInstancesPerSecondMedian: median(results.map((r) => r.ingest.instancesPerSecond)),
          readBackInstancesPerSecondMedian: median(results.map((r) => r.readBack.instancesPerSecond)),
          runs: results,
        },
      ]),
    );
    const ratio = (
      name: string,
      field: 'ingestInstancesPerSecondMedian' | 'readBackInstancesPerSecondMedian',
    ) => {
      const base = summary['builtin']?.[field];
      const other = summary[name]?.[field];
      return base && other ? round(other / base, 3) : null;
    };
    const report = {
      benchmark: 'bridge',
      date: new Date().toISOString(),
      machine: machineInfo(),
      workload: workloadReport(files, source, {
        copies: COPIES,
        clients: CLIENTS,
        runs: RUNS,
        note: 'each instance is a template re-issued under a fresh SOP Instance UID; read-back after an Orthanc restart',
      }),
      ...(artifactMissing && {
        pluginSkipped: `artifact ${backend.artifactPath} is missing: build packages/core`,
      }),
      results: summary,
      ratiosAgainstBuiltin: {
        pluginIngest: ratio('plugin', 'ingestInstancesPerSecondMedian'),
        pluginReadBack: ratio('plugin', 'readBackInstancesPerSecondMedian'),
        pluginEncryptedIngest: ratio('pluginEncrypted', 'ingestInstancesPerSecondMedian'),
        pluginEncryptedReadBack: ratio('pluginEncrypted', 'readBackInstancesPerSecondMedian'),
      },
      shimGatewayOverhead: await bridgeOverhead(),
    };
    const json = JSON.stringify(report, null, 2);
    const resultsDir = path.join(repoRoot(), 'tooling', 'e2e', 'bench-results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, 'bridge.json'), json + '\n');
    console.log(json);
    if (artifactMissing) process.exitCode = 1;
  } finally {
    rmSync(workRoot, { recursive: true, force: true });
  }
}

await main();
