// The native shim and its gateway in a fake Orthanc host (harness/shim-host.c), with core's
// file-system plugin: start-up errors, GatewayCallTimeout, and calls that stall or keep moving.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { artifactDir, nodeExecutable } from './harness/repo.js';
import { ShimHost } from './harness/shim-host.js';
import { sleep } from './harness/parallel.js';

const PLUGIN = path.join(artifactDir('core'), 'libOrthancFileSystemObjectStorage.so');
const MiB = 1024 * 1024;

let workDir: string;
const hosts: ShimHost[] = [];

beforeAll(() => {
  workDir = mkdtempSync(path.join(os.tmpdir(), 'oos-shim-bridge-'));
});

afterAll(async () => {
  for (const host of hosts) await host.stop();
  rmSync(workDir, { recursive: true, force: true });
});

async function startHost(section: Record<string, unknown>, threads = 4): Promise<ShimHost> {
  const host = await ShimHost.start({
    plugin: PLUGIN,
    workDir,
    threads,
    configuration: {
      SyncStorageArea: false,
      FileSystemObjectStorage: {
        Directory: path.join(workDir, `objects-${randomUUID()}`),
        NodeExecutable: nodeExecutable(),
        ...section,
      },
    },
  });
  hosts.push(host);
  return host;
}

/** Stops and continues a process in turns until `done` resolves: progress only in short bursts. */
async function pulse(pid: number, done: Promise<unknown>, stoppedMs: number, runningMs: number) {
  let finished = false;
  void done.finally(() => (finished = true));
  while (!finished) {
    process.kill(pid, 'SIGSTOP');
    await sleep(stoppedMs);
    process.kill(pid, 'SIGCONT');
    await sleep(runningMs);
  }
}

describe('start-up', () => {
  it('a start-up error of any length reaches the log whole', async () => {
    // The key path (3.4 KB) is part of the error: its end must arrive.
    const keyPath = `/nonexistent/${Array.from({ length: 12 }, (_, i) => String(i).repeat(240)).join('/')}/end-of-path.key`;
    const host = await startHost({ StorageEncryption: { MasterKey: [1, keyPath] } });
    expect(host.ready).toBe(false);
    expect(await host.exited).toBe(1);
    const errors = host.log.filter((line) => line.startsWith('E '));
    const whole = errors.find((line) => line.includes('cannot read key file'));
    expect(whole).toBeDefined();
    expect(whole).toContain(`${keyPath} (ENOENT)`);
    expect(host.log.join('\n')).not.toContain('unknown error');
  });

  it.each([1, 604_799, 604_800, 2_147_483])(
    'GatewayCallTimeout %d s is the one the shim applies',
    async (seconds) => {
      const host = await startHost({ GatewayCallTimeout: seconds }, 1);
      expect(host.ready).toBe(true);
      expect(host.log.some((line) => line.includes(`call timeout ${seconds} s without progress`))).toBe(true);
      await host.stop();
    },
  );
});

describe('GatewayCallTimeout bounds a period without progress', () => {
  it('a stalled call fails after the timeout, and the next one works', async () => {
    const host = await startHost({ GatewayCallTimeout: 2 }, 2);
    const gateway = host.gatewayPids()[0]!;
    const uuid = randomUUID();
    process.kill(gateway, 'SIGSTOP');
    let stalled;
    try {
      stalled = await host.create(uuid, 100_000, 1);
    } finally {
      process.kill(gateway, 'SIGCONT');
    }
    expect(stalled.rc).not.toBe(0);
    expect(stalled.ms).toBeGreaterThanOrEqual(1900);
    expect(stalled.ms).toBeLessThan(10_000);
    expect(host.log.some((line) => line.includes(`creating object ${uuid}: no progress for 2 s`))).toBe(true);
    expect((await host.create(uuid, 100_000, 1)).rc).toBe(0);
    expect(await host.readWhole(uuid, 100_000, 1)).toMatchObject({ rc: 0, match: true });
    await host.stop();
  });

  it('a transfer that keeps moving is never cut, however long it takes', async () => {
    const host = await startHost({ GatewayCallTimeout: 2 }, 2);
    const gateway = host.gatewayPids()[0]!;
    const uuid = randomUUID();
    const size = 64 * MiB;
    // The gateway runs 10 ms out of every 810: each stall is shorter than the timeout, the whole
    // call much longer (a gateway that moves 64 MiB in ~60 ms of running needs short slices).
    const created = host.create(uuid, size, 7);
    await pulse(gateway, created, 800, 10);
    const create = await created;
    expect(create.rc).toBe(0);
    expect(create.ms).toBeGreaterThan(2000);
    const reading = host.readWhole(uuid, size, 7);
    await pulse(gateway, reading, 800, 10);
    const read = await reading;
    expect(read).toMatchObject({ rc: 0, match: true });
    expect(read.ms).toBeGreaterThan(2000);
    await host.stop();
  }, 180_000);
});
