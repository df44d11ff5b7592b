// C1 through the bridge (`pnpm bench` in packages/core): a 1 GiB object written, read whole and
// read as 4 KiB ranges from its middle through the native shim and the gateway (file-system
// backend), C1-encrypted vs unencrypted on the same backend, alternating over rounds; A1 once for
// comparison (its ranges decrypt the whole object). Reports time, bytes the gateway read, its CPU
// and its peak RSS per phase. Prints JSON and writes bench-results/c1-bridge.json.
//
//   node dist/bench/c1-bridge-bench.js   (after pnpm build; OOS_BENCH_C1_BYTES, OOS_BENCH_C1_RANGES)
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileBridgeHost, runLargeObject, type LargeObjectReport } from './bridge-host.js';

const MiB = 1024 * 1024;
const RESULTS = resolve(dirname(fileURLToPath(import.meta.url)), '../../bench-results/c1-bridge.json');
type Variant = 'plain' | 'C1' | 'A1';

const summarize = (variant: Variant, report: LargeObjectReport) => {
  const { create, readWhole, readRange4KiB } = report.phases;
  const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;
  return {
    variant,
    createMs: Math.round(create.ms),
    readWholeMs: Math.round(readWhole.ms),
    range4KiBFirstUs: report.range4KiBFirstUs,
    range4KiBP50Us: report.range4KiBP50Us,
    range4KiBP90Us: report.range4KiBP90Us,
    rangeCalls: readRange4KiB.calls,
    gatewayBytesReadPerRange: Math.round(readRange4KiB.gatewayReadBytes / readRange4KiB.calls),
    gatewayCpuMsPerRange: Math.round((readRange4KiB.gatewayCpuMs / readRange4KiB.calls) * 100) / 100,
    gatewayCpuMs: { create: create.gatewayCpuMs, readWhole: readWhole.gatewayCpuMs },
    gatewayPeakRssMiB: {
      create: mib(create.gatewayPeakRssKiB),
      readWhole: mib(readWhole.gatewayPeakRssKiB),
      readRange: mib(readRange4KiB.gatewayPeakRssKiB),
    },
    failures: report.failures,
  };
};

async function main(): Promise<void> {
  const bytes = Number(process.env.OOS_BENCH_C1_BYTES ?? 1024 * MiB);
  const ranges = Number(process.env.OOS_BENCH_C1_RANGES ?? 200);
  const rounds = 2;
  const work = await mkdtemp(join(tmpdir(), 'oos-c1-bridge-'));
  try {
    const host = compileBridgeHost(work);
    const keyPath = join(work, 'master.b64');
    writeFileSync(keyPath, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const run = async (variant: Variant, rangeCalls: number) =>
      summarize(
        variant,
        await runLargeObject({
          host,
          workDir: join(work, `${variant}`),
          bytes,
          ranges: rangeCalls,
          ...(variant !== 'plain' && { encryption: { keyPath, writeFormat: variant } }),
        }),
      );
    mkdirSync(join(work, 'plain'));
    mkdirSync(join(work, 'C1'));
    mkdirSync(join(work, 'A1'));
    const runs: ReturnType<typeof summarize>[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const variant of round % 2 === 0 ? (['plain', 'C1'] as const) : (['C1', 'plain'] as const)) {
        runs.push(await run(variant, ranges));
      }
    }
    const a1 = await run('A1', 3);
    const median = (variant: Variant, pick: (r: ReturnType<typeof summarize>) => number) => {
      const values = runs
        .filter((r) => r.variant === variant)
        .map(pick)
        .sort((x, y) => x - y);
      return values.length % 2 === 1
        ? values[(values.length - 1) / 2]!
        : (values[values.length / 2 - 1]! + values[values.length / 2]!) / 2;
    };
    const p50 = (variant: Variant) => median(variant, (r) => r.range4KiBP50Us);
    const fetched = (variant: Variant) => median(variant, (r) => r.gatewayBytesReadPerRange);
    const peak = Math.max(
      ...[...runs, a1]
        .filter((r) => r.variant !== 'plain')
        .flatMap((r) => Object.values(r.gatewayPeakRssMiB)),
    );
    const report = {
      benchmark: 'C1 through the Orthanc bridge: 1 GiB object, 4 KiB ranges from the middle',
      description:
        'fake Orthanc host (src/bench/bridge-overhead.c) loading the file-system plugin; backend on ' +
        `${tmpdir()}; gateway figures from /proc/<gateway>/{status,io,stat}; bytes read = rchar (files and the shim socket)`,
      node: process.version,
      cpu: cpus()[0]?.model,
      cores: cpus().length,
      loadAverage1min: loadavg()[0],
      date: new Date().toISOString(),
      objectBytes: bytes,
      rounds,
      range4KiB: {
        plainP50Us: p50('plain'),
        c1P50Us: p50('C1'),
        plainFirstUs: median('plain', (r) => r.range4KiBFirstUs),
        c1FirstUs: median('C1', (r) => r.range4KiBFirstUs),
        note: 'first = the first range of the object (C1: header fetched, 2 backend requests); p50 over the rest (C1: header cached, 1 request)',
        timeRatioC1toPlain: Math.round((p50('C1') / p50('plain')) * 100) / 100,
        target: 'C1 at most 2x the unencrypted time',
        plainBytesReadPerRange: fetched('plain'),
        c1BytesReadPerRange: fetched('C1'),
        a1P50Us: a1.range4KiBP50Us,
        a1BytesReadPerRange: a1.gatewayBytesReadPerRange,
      },
      gatewayPeakRssMiBEncrypted: peak,
      gatewayPeakRssTargetMiB: 256,
      withinRssTarget: peak <= 256,
      runs: [...runs, a1],
    };
    const json = JSON.stringify(report, null, 2);
    mkdirSync(dirname(RESULTS), { recursive: true });
    writeFileSync(RESULTS, `${json}\n`);
    process.stdout.write(`${json}\n`);
    if ([...runs, a1].some((r) => r.failures > 0)) {
      console.error('some bridge calls failed or returned wrong bytes');
      process.exitCode = 1;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
