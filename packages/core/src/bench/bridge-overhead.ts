// Bridge overhead benchmark: per-call latency of the storage callbacks through the native shim
// and the gateway (file-system backend on /dev/shm), against the same backend called directly
// in-process. The difference is what the bridge costs per call. Prints JSON.
//
//   node dist/bench/bridge-overhead.js        (after pnpm build; OOS_BENCH_ITERATIONS=200)
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ContentType } from '../storage/contract.js';
import { FileSystemStorage } from '../storage/fs-storage.js';
import { compileBridgeHost, FILESYSTEM_PLUGIN } from './bridge-host.js';

const PLUGIN = FILESYSTEM_PLUGIN;
const SIZES = [4096, 65536, 1048576];

interface Sample {
  readonly operation: string;
  readonly bytes: number;
  readonly calls: number;
  readonly p50Us: number;
  readonly p90Us: number;
}

function percentiles(operation: string, bytes: number, samples: number[]): Sample {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.floor(sorted.length * q)]! * 10) / 10;
  return { operation, bytes, calls: samples.length, p50Us: at(0.5), p90Us: at(0.9) };
}

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The same operations on the same backend, called in-process: the baseline. */
async function direct(root: string, iterations: number): Promise<Sample[]> {
  const storage = new FileSystemStorage({ root, sync: false });
  const results: Sample[] = [];
  for (const size of SIZES) {
    const data = Buffer.alloc(size, 7);
    const keys = Array.from({ length: iterations }, () => ({ uuid: randomUUID(), type: ContentType.Dicom }));
    const time = async (run: () => Promise<unknown>) => {
      const start = process.hrtime.bigint();
      await run();
      return Number(process.hrtime.bigint() - start) / 1000;
    };
    for (const key of keys.slice(0, 20)) {
      // warm-up (JIT, page cache), not recorded
      await storage.create(key, size, Readable.from([data]));
      await drain((await storage.read(key)).body);
    }
    const creates: number[] = [];
    for (const key of keys) creates.push(await time(() => storage.create(key, size, Readable.from([data]))));
    const reads: number[] = [];
    for (const key of keys) reads.push(await time(async () => drain((await storage.read(key)).body)));
    const ranges: number[] = [];
    for (const key of keys)
      ranges.push(await time(async () => drain(await storage.readRange(key, size / 4, size / 2))));
    for (const key of keys) await storage.remove(key);
    results.push(
      percentiles('create', size, creates),
      percentiles('readWhole', size, reads),
      percentiles('readRange(half)', size, ranges),
    );
  }
  return results;
}

async function main(): Promise<void> {
  if (!existsSync(PLUGIN)) throw new Error(`${PLUGIN} is missing: run pnpm build in packages/core first`);
  const iterations = Number(process.env.OOS_BENCH_ITERATIONS ?? 200);
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const work = await mkdtemp(join(base, 'oos-bridge-overhead-'));
  try {
    const driver = compileBridgeHost(work);
    const configuration = join(work, 'configuration.json');
    await writeFile(
      configuration,
      JSON.stringify({
        SyncStorageArea: false,
        FileSystemObjectStorage: { Directory: join(work, 'bridge'), NodeExecutable: process.execPath },
      }),
    );
    const output = execFileSync(driver, [PLUGIN, configuration, String(iterations)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const bridge = JSON.parse(output) as { results: Sample[]; failures: number };
    if (bridge.failures > 0) throw new Error(`${bridge.failures} bridge calls failed`);
    const baseline = await direct(join(work, 'direct'), iterations);
    const results = bridge.results.map((viaBridge, i) => {
      const inProcess = baseline[i]!;
      return {
        operation: viaBridge.operation,
        bytes: viaBridge.bytes,
        calls: viaBridge.calls,
        bridgeP50Us: viaBridge.p50Us,
        bridgeP90Us: viaBridge.p90Us,
        directP50Us: inProcess.p50Us,
        directP90Us: inProcess.p90Us,
        overheadP50Us: Math.round((viaBridge.p50Us - inProcess.p50Us) * 10) / 10,
        overheadP90Us: Math.round((viaBridge.p90Us - inProcess.p90Us) * 10) / 10,
      };
    });
    const report = {
      benchmark: 'bridge-overhead',
      description:
        'Per-call latency of Orthanc storage callbacks through shim + gateway (file-system backend, no fsync) vs the same backend in-process',
      backendDirectory: base,
      node: process.version,
      results,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
