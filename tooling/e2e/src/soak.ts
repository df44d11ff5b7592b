// Soak through the native shim (fake Orthanc host, 16 threads): mixed creates, whole reads, range
// reads and removes, with every read compared byte for byte, while the gateway's memory and open
// descriptors are sampled. Used by soak.e2e.test.ts (short, in CI) and `pnpm bench` (10,000).
import { randomUUID } from 'node:crypto';
import type { BackendStore, E2EBackend, MasterKeyFile } from './backends/backend.js';
import { cpuMs, openDescriptors, processMemory } from './harness/proc.js';
import { nodeExecutable } from './harness/repo.js';
import { ShimHost } from './harness/shim-host.js';

export interface SoakOptions {
  readonly plugin: string;
  readonly configuration: Record<string, unknown>;
  readonly workDir: string;
  readonly operations: number;
  readonly concurrency?: number;
}

export interface SoakResult {
  readonly operations: number;
  readonly counts: Record<'create' | 'read' | 'range' | 'remove', number>;
  readonly mismatches: number;
  readonly failures: string[];
  /** Highest gateway RSS seen in each quarter of the run, in MiB. */
  readonly rssPeakMiB: [number, number, number, number];
  /** Open descriptors of the gateway after the first quarter (pools warm) and at the end. */
  readonly descriptors: { readonly first: number; readonly last: number };
  readonly seconds: number;
  /** CPU time (user + system, from /proc) per operation of the gateway and of the fake Orthanc host. */
  readonly cpuMsPerOperation: { readonly gateway: number; readonly host: number };
  /** Warning and error lines the plugin logged after its start (distinct, at most 10). */
  readonly problems: string[];
}

const KiB = 1024;

/** Log-uniform from 1 KiB to 1 MiB: many small objects, some large, as Orthanc stores them. */
function objectSize(): number {
  return Math.round(KiB * 2 ** (Math.random() * 10));
}

/** Orthanc's configuration for soaking `store`: its section, encrypted with `key` when given. */
export function soakConfiguration(
  backend: E2EBackend,
  store: BackendStore,
  key: MasterKeyFile | undefined,
): Record<string, unknown> {
  return {
    SyncStorageArea: false,
    [backend.sectionName]: { ...store.section(key), NodeExecutable: nodeExecutable() },
  };
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const concurrency = options.concurrency ?? 16;
  const host = await ShimHost.start({
    plugin: options.plugin,
    configuration: options.configuration,
    workDir: options.workDir,
    threads: concurrency,
  });
  if (!host.ready) throw new Error(`the plugin did not start:\n${host.log.join('\n')}`);
  const gateway = host.gatewayPids()[0]!;
  const startupLogLines = host.log.length; // the startup summary is logged as a warning, as Orthanc's plugins do
  const live = new Map<string, { size: number; seed: number }>();
  const busy = new Set<string>();
  const counts = { create: 0, read: 0, range: 0, remove: 0 };
  const failures: string[] = [];
  let mismatches = 0;
  const rssPeak: [number, number, number, number] = [0, 0, 0, 0];
  let done = 0;
  const quarter = () => Math.min(3, Math.floor((4 * done) / options.operations));
  const sampler = setInterval(() => {
    const q = quarter();
    rssPeak[q] = Math.max(rssPeak[q] ?? 0, processMemory(gateway).rss);
    if (q >= 1) firstDescriptors ??= openDescriptors(gateway);
  }, 100);
  const started = Date.now();
  const cpuAtStart = { gateway: cpuMs(gateway) ?? 0, host: cpuMs(host.pid) ?? 0 };
  // Descriptors once warm (connection pools filled), at the end of the first quarter.
  let firstDescriptors: number | undefined;

  const pickLive = (): string | undefined => {
    for (const uuid of live.keys()) if (!busy.has(uuid) && Math.random() < 0.2) return uuid;
    for (const uuid of live.keys()) if (!busy.has(uuid)) return uuid;
    return undefined;
  };

  const one = async (): Promise<void> => {
    const roll = Math.random();
    const target = live.size < 40 || roll < 0.35 ? undefined : pickLive();
    if (target === undefined) {
      const uuid = randomUUID();
      const object = { size: objectSize(), seed: Math.floor(Math.random() * 2 ** 31) };
      busy.add(uuid);
      const result = await host.create(uuid, object.size, object.seed);
      busy.delete(uuid);
      counts.create += 1;
      if (result.rc === 0) live.set(uuid, object);
      else failures.push(`create ${uuid}: rc ${result.rc}`);
      return;
    }
    const object = live.get(target)!;
    busy.add(target);
    try {
      if (roll < 0.65 || (roll < 0.85 && !host.rangeReads)) {
        counts.read += 1;
        const result = await host.readWhole(target, object.size, object.seed);
        if (result.rc !== 0) failures.push(`read ${target}: rc ${result.rc}`);
        else if (result.match !== true) mismatches += 1;
      } else if (roll < 0.85) {
        counts.range += 1;
        const offset = Math.floor(Math.random() * object.size);
        const length = Math.floor(Math.random() * (object.size - offset));
        const result = await host.readRange(target, offset, length, object.seed);
        if (result.rc !== 0) failures.push(`range ${target}: rc ${result.rc}`);
        else if (result.match !== true) mismatches += 1;
      } else {
        counts.remove += 1;
        const result = await host.remove(target);
        if (result.rc === 0) live.delete(target);
        else failures.push(`remove ${target}: rc ${result.rc}`);
      }
    } finally {
      busy.delete(target);
    }
  };

  const worker = async () => {
    while (done < options.operations) {
      done += 1;
      await one();
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
    const lastDescriptors = openDescriptors(gateway);
    const perOperation = (now: number | undefined, before: number) =>
      Math.round((((now ?? before) - before) / Math.max(done, 1)) * 1000) / 1000;
    const cpuMsPerOperation = {
      gateway: perOperation(cpuMs(gateway), cpuAtStart.gateway),
      host: perOperation(cpuMs(host.pid), cpuAtStart.host),
    };
    for (const uuid of live.keys()) await host.remove(uuid);
    const MiB = KiB * KiB;
    return {
      operations: done,
      counts,
      mismatches,
      failures: failures.slice(0, 20),
      rssPeakMiB: rssPeak.map((bytes) => Math.round((bytes / MiB) * 10) / 10) as SoakResult['rssPeakMiB'],
      descriptors: { first: firstDescriptors ?? lastDescriptors, last: lastDescriptors },
      seconds: Math.round((Date.now() - started) / 100) / 10,
      cpuMsPerOperation,
      problems: [...new Set(host.log.slice(startupLogLines).filter((line) => /^[WE] /.test(line)))].slice(
        0,
        10,
      ),
    };
  } finally {
    clearInterval(sampler);
    await host.stop();
  }
}
