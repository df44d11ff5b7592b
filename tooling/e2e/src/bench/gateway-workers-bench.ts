// Gateway workers benchmark: a gateway-bound load (A1 encryption to core's file-system backend on
// tmpfs, 16 calls at once through the native shim in the fake host harness/shim-host.c) with
// GatewayWorkers 1 and 2, alternating in one run. Reports rates, the 2-vs-1 ratio of each round,
// and the gateway's CPU per operation and RSS from /proc. JSON to stdout and
// bench-results/gateway-workers.json. Figures, never assertions.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ShimHost } from '../harness/shim-host.js';
import { cpuMs, processMemory, threadCpuMs } from '../harness/proc.js';
import { artifactDir, nodeExecutable, repoRoot } from '../harness/repo.js';
import { machineInfo, median, round } from './bench-common.js';

const PLUGIN = path.join(artifactDir('core'), 'libOrthancFileSystemObjectStorage.so');
const CALLERS = 16;
const OBJECT_BYTES = Number(process.env['OOS_BENCH_OBJECT_BYTES'] ?? 1024 * 1024);
const OPERATIONS = Number(process.env['OOS_BENCH_OPERATIONS'] ?? 300);
const RUNS = Number(process.env['OOS_BENCH_RUNS'] ?? 3);
const WORKER_COUNTS = [1, 2] as const;

interface Phase {
  readonly operations: number;
  readonly seconds: number;
  readonly operationsPerSecond: number;
  readonly mebibytesPerSecond: number;
  /** CPU (user + system, all threads) of the gateway process per operation. */
  readonly gatewayCpuMsPerOperation: number;
  /** The same by kind of thread (see threadCpuMs): where the gateway's CPU goes. */
  readonly gatewayCpuMsPerOperationByThread: Record<string, number>;
  /** CPU of the fake host (the shim and its callers, which make and check the bytes). */
  readonly hostCpuMsPerOperation: number;
}

interface RunResult {
  readonly workers: number;
  readonly create: Phase;
  readonly read: Phase;
  readonly gatewayIdleRssMiB: number;
  readonly gatewayPeakRssMiB: number;
}

/** Own CPU of the host process (its children not included: /proc/<pid>/stat counts one process). */
function hostCpu(host: ShimHost): number {
  return cpuMs(host.pid) ?? NaN;
}

async function phase(
  host: ShimHost,
  gateway: number,
  run: (index: number) => Promise<{ rc: number; match: boolean | null }>,
  checkMatch: boolean,
): Promise<Phase> {
  const gatewayBefore = cpuMs(gateway) ?? NaN;
  const threadsBefore = threadCpuMs(gateway);
  const hostBefore = hostCpu(host);
  const start = process.hrtime.bigint();
  const results = await Promise.all(Array.from({ length: OPERATIONS }, (_, i) => run(i)));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const threadsAfter = threadCpuMs(gateway);
  const byThread = Object.fromEntries(
    Object.entries(threadsAfter)
      .map(([name, ms]) => [name, round((ms - (threadsBefore[name] ?? 0)) / OPERATIONS, 3)] as const)
      .filter(([, ms]) => ms > 0),
  );
  const failed = results.filter((result) => result.rc !== 0 || (checkMatch && result.match !== true));
  if (failed.length > 0) throw new Error(`${failed.length} calls failed or read wrong bytes`);
  return {
    operations: OPERATIONS,
    seconds: round(seconds, 3),
    operationsPerSecond: round(OPERATIONS / seconds, 1),
    mebibytesPerSecond: round((OPERATIONS * OBJECT_BYTES) / 1048576 / seconds, 1),
    gatewayCpuMsPerOperation: round(((cpuMs(gateway) ?? NaN) - gatewayBefore) / OPERATIONS, 3),
    gatewayCpuMsPerOperationByThread: byThread,
    hostCpuMsPerOperation: round((hostCpu(host) - hostBefore) / OPERATIONS, 3),
  };
}

async function measure(
  workers: number,
  workDir: string,
  objectsRoot: string,
  keyPath: string,
): Promise<RunResult> {
  const directory = mkdtempSync(path.join(objectsRoot, `workers-${workers}-`));
  const host = await ShimHost.start({
    plugin: PLUGIN,
    workDir,
    threads: CALLERS,
    configuration: {
      SyncStorageArea: false,
      FileSystemObjectStorage: {
        Directory: directory,
        NodeExecutable: nodeExecutable(),
        GatewayWorkers: workers,
        StorageEncryption: { MasterKey: [1, keyPath], WriteFormat: 'A1' },
      },
    },
  });
  try {
    if (!host.ready) throw new Error(`the plugin did not start: ${host.log.join('\n')}`);
    const gateway = host.gatewayPids()[0];
    if (gateway === undefined) throw new Error('no gateway process');
    // Warm-up (JIT, first connections of every worker), not timed.
    await Promise.all(
      Array.from({ length: 4 * CALLERS }, (_, i) => host.create(randomUUID(), OBJECT_BYTES, 1000 + i)),
    );
    const idle = processMemory(gateway).rss;
    const uuids = Array.from({ length: OPERATIONS }, () => randomUUID());
    const create = await phase(host, gateway, (i) => host.create(uuids[i]!, OBJECT_BYTES, i), false);
    const read = await phase(host, gateway, (i) => host.readWhole(uuids[i]!, OBJECT_BYTES, i), true);
    const peak = processMemory(gateway).peak;
    return {
      workers,
      create,
      read,
      gatewayIdleRssMiB: round(idle / 1048576, 1),
      gatewayPeakRssMiB: round(peak / 1048576, 1),
    };
  } finally {
    await host.stop();
    rmSync(directory, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'oos-bench-workers-'));
  const objectsRoot = mkdtempSync(path.join('/dev/shm', 'oos-bench-workers-'));
  const keyPath = path.join(workDir, 'master.key');
  writeFileSync(keyPath, Buffer.alloc(32, 5).toString('base64'), { mode: 0o600 });
  try {
    const rounds: { runs: RunResult[]; createRatio: number; readRatio: number }[] = [];
    for (let round_ = 0; round_ < RUNS; round_++) {
      // Alternate which configuration goes first, so drift in the machine's load evens out.
      const order = round_ % 2 === 0 ? [...WORKER_COUNTS] : [...WORKER_COUNTS].reverse();
      const runs: RunResult[] = [];
      for (const workers of order) runs.push(await measure(workers, workDir, objectsRoot, keyPath));
      const one = runs.find((run) => run.workers === 1)!;
      const two = runs.find((run) => run.workers === 2)!;
      rounds.push({
        runs,
        createRatio: round(two.create.operationsPerSecond / one.create.operationsPerSecond, 2),
        readRatio: round(two.read.operationsPerSecond / one.read.operationsPerSecond, 2),
      });
    }
    const report = {
      benchmark: 'gateway-workers',
      machine: { ...machineInfo(), loadAverage: os.loadavg().map((load) => round(load, 2)) },
      workload: {
        what: 'A1-encrypted creates then whole reads through the native shim (fake host), file-system backend on /dev/shm',
        callers: CALLERS,
        objectBytes: OBJECT_BYTES,
        operationsPerPhase: OPERATIONS,
        runs: RUNS,
        note: 'configurations alternate within each round; ratios compare runs of the same round',
      },
      target: 'GatewayWorkers 2 runs >= 1.6x faster than 1 on a 2-core machine',
      medianRatio2vs1: {
        create: round(median(rounds.map((r) => r.createRatio)), 2),
        read: round(median(rounds.map((r) => r.readRatio)), 2),
      },
      rounds,
    };
    const text = JSON.stringify(report, null, 2);
    console.log(text);
    const resultsDir = path.join(repoRoot(), 'tooling', 'e2e', 'bench-results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, 'gateway-workers.json'), `${text}\n`);
  } finally {
    rmSync(objectsRoot, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  }
}

await main();
