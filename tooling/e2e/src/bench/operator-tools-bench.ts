// Operator tools benchmark: `reencrypt --retire` and `verify --orthanc` of 300 instances stored by
// a real Orthanc with the aws plugin (C1) on Ceph RGW, at two concurrency levels, alternating.
// Each reencrypt run retires the key the previous one wrote with. Rates come from the CLI's own
// JSON summary; CPU per object of the CLI (its parent shell's cutime+cstime once it has exited)
// and of radosgw and ceph-osd, from /proc. JSON to stdout and bench-results/operator-tools.json.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AWS_PLUGIN, startEncryptedRgw, type EncryptedRgw } from '../harness/encrypted-rgw.js';
import { reissue } from '../harness/dicom/reuid.js';
import { OrthancServer } from '../harness/orthanc.js';
import { mapConcurrent } from '../harness/parallel.js';
import { childrenCpuSeconds, cpuSeconds } from '../harness/proc.js';
import { coreCliPath, nodeExecutable } from '../harness/repo.js';
import { benchTemplates, machineInfo, median, round, writeBenchReport } from './bench-common.js';
import { writeMasterKey } from '../backends/backend.js';

const medianOf = (values: number[]): number => round(median(values), 2);

const INSTANCES = Number(process.env['OOS_BENCH_INSTANCES'] ?? 300);
const RUNS = Number(process.env['OOS_BENCH_RUNS'] ?? 2);
const CONCURRENCY = [1, 8] as const;

interface CliSummary {
  objects: number;
  bytes: number;
  seconds: number;
  objectsPerSecond: number;
  megabytesPerSecond: number;
  rewritten?: { objects: number; bytes: number };
  failures?: unknown[];
  problems?: unknown[];
}

interface Sample {
  readonly objects: number;
  readonly megabytes: number;
  readonly seconds: number;
  readonly objectsPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly cpuMsPerObject: { cli: number; radosgw: number; osd: number };
}

/** Run the CLI under a shell that prints its own /proc stat after the CLI exits: cutime is the CLI's CPU. */
async function runMeasured(args: string[], statFile: string): Promise<{ summary: CliSummary; cli: number }> {
  const script = '"$0" "$@"; rc=$?; cat /proc/$$/stat > "$OOS_STAT_FILE"; exit $rc';
  const child = spawn('sh', ['-c', script, nodeExecutable(), coreCliPath(), ...args, '--json'], {
    env: { ...process.env, OOS_STAT_FILE: statFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${args[0]} exited ${code}: ${stderr}${stdout}`);
  return {
    summary: JSON.parse(stdout) as CliSummary,
    cli: childrenCpuSeconds(readFileSync(statFile, 'utf8')),
  };
}

async function measure(fixture: EncryptedRgw, args: string[], statFile: string): Promise<Sample> {
  const { radosgw, osd } = fixture.rgw.servingPids();
  const before = { radosgw: cpuSeconds(radosgw), osd: cpuSeconds(osd) };
  const { summary, cli } = await runMeasured(args, statFile);
  if ((summary.failures ?? summary.problems ?? []).length > 0) {
    throw new Error(`${args[0]} reported problems: ${JSON.stringify(summary)}`);
  }
  const objects = summary.rewritten?.objects ?? summary.objects;
  const bytes = summary.rewritten?.bytes ?? summary.bytes;
  const perObject = (seconds: number) => round((seconds * 1000) / objects, 2);
  return {
    objects,
    megabytes: round(bytes / 1e6, 1),
    seconds: summary.seconds,
    objectsPerSecond: summary.objectsPerSecond,
    megabytesPerSecond: summary.megabytesPerSecond,
    cpuMsPerObject: {
      cli: perObject(cli),
      radosgw: perObject(cpuSeconds(radosgw) - before.radosgw),
      osd: perObject(cpuSeconds(osd) - before.osd),
    },
  };
}

function summarize(samples: Sample[]) {
  return {
    objects: samples[0]!.objects,
    megabytes: samples[0]!.megabytes,
    objectsPerSecond: medianOf(samples.map((s) => s.objectsPerSecond)),
    megabytesPerSecond: medianOf(samples.map((s) => s.megabytesPerSecond)),
    cpuMsPerObject: {
      cli: medianOf(samples.map((s) => s.cpuMsPerObject.cli)),
      radosgw: medianOf(samples.map((s) => s.cpuMsPerObject.radosgw)),
      osd: medianOf(samples.map((s) => s.cpuMsPerObject.osd)),
    },
  };
}

async function main(): Promise<void> {
  const fixture = await startEncryptedRgw('operator-tools-bench');
  const work = fixture.workDir;
  let orthanc: OrthancServer | undefined;
  try {
    orthanc = await OrthancServer.start({
      workDir: path.join(work, 'orthanc'),
      plugins: [AWS_PLUGIN],
      verbose: false,
      configuration: { AwsS3Storage: fixture.section() },
    });
    const templates = await benchTemplates(work);
    const files = Array.from({ length: INSTANCES }, (_, i) =>
      reissue(templates.files[i % templates.files.length]!),
    );
    await mapConcurrent(files, 4, (bytes) => orthanc!.client.uploadBytes(bytes));

    // The CLI reads its own copy of the section: each reencrypt run makes a new key current.
    let key: [number, string] = [1, path.join(work, 'master-key-1.b64')];
    const cliConfig = path.join(work, 'cli-configuration.json');
    const statFile = path.join(work, 'cli.stat');
    const samples = new Map<string, Sample[]>();
    const record = (name: string, sample: Sample) => {
      samples.set(name, [...(samples.get(name) ?? []), sample]);
      process.stderr.write(`${name}: ${JSON.stringify(sample)}\n`);
    };
    for (let run = 0; run < RUNS; run++) {
      const order = run % 2 === 0 ? CONCURRENCY : [...CONCURRENCY].reverse();
      for (const concurrency of order) {
        const next: [number, string] = [key[0] + 1, writeMasterKey(work, key[0] + 1).path];
        const section = fixture.section({}, { MasterKey: next, PreviousMasterKeys: [key] });
        writeFileSync(cliConfig, JSON.stringify({ AwsS3Storage: section }, null, 2));
        const common = ['--config', cliConfig, '--concurrency', String(concurrency)];
        record(
          `reencrypt-c${concurrency}`,
          await measure(fixture, ['reencrypt', ...common, '--retire', String(key[0])], statFile),
        );
        key = next;
        record(
          `verify-c${concurrency}`,
          await measure(fixture, ['verify', ...common, '--orthanc', orthanc.url], statFile),
        );
      }
    }
    const report = {
      benchmark: 'operator-tools',
      machine: machineInfo(),
      loadAverage: os.loadavg().map((value) => round(value, 2)),
      workload: {
        instances: INSTANCES,
        source: templates.source,
        runs: RUNS,
        note:
          'reencrypt --retire (C1 -> C1 under a new key: read, encrypt, write beside, read back, conditional swap, ' +
          'read back, remove the replacement) and verify --orthanc (read and authenticate every object, compare ' +
          'with the index), each at --concurrency 1 and 8, alternating. Rates from the CLI summary (MB = 1e6 bytes ' +
          'of stored objects); CPU per object from /proc (utime+stime): the CLI, radosgw and ceph-osd (memstore).',
      },
      results: Object.fromEntries(
        [...samples.entries()].map(([name, list]) => [name, { median: summarize(list), runs: list }]),
      ),
    };
    writeBenchReport('operator-tools', report);
  } finally {
    await orthanc?.stop();
    await fixture.stop();
  }
}

await main();
