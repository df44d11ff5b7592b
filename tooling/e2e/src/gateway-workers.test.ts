// GatewayWorkers through the native shim, in the fake Orthanc host (harness/shim-host.c) with
// core's file-system plugin: the shim spreads its calls over the worker threads' sockets, every
// byte comes back as written, and a worker thread that dies brings the gateway back.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { artifactDir, nodeExecutable } from './harness/repo.js';
import { ShimHost } from './harness/shim-host.js';
import { retryFor } from './harness/parallel.js';

const PLUGIN = path.join(artifactDir('core'), 'libOrthancFileSystemObjectStorage.so');
const KiB = 1024;

let workDir: string;
const hosts: ShimHost[] = [];

beforeAll(() => {
  workDir = mkdtempSync(path.join(os.tmpdir(), 'oos-gateway-workers-'));
});

afterAll(async () => {
  for (const host of hosts) await host.stop();
  rmSync(workDir, { recursive: true, force: true });
});

/** A host whose shim keeps its sockets under `tmp` (TMPDIR), so the test can find them. */
async function startHost(tmp: string, section: Record<string, unknown>, node = nodeExecutable()) {
  const host = await ShimHost.start({
    plugin: PLUGIN,
    workDir,
    threads: 16,
    env: { TMPDIR: tmp },
    configuration: {
      SyncStorageArea: false,
      FileSystemObjectStorage: {
        Directory: path.join(workDir, `objects-${randomUUID()}`),
        NodeExecutable: node,
        ...section,
      },
    },
  });
  hosts.push(host);
  return host;
}

function freshTmp(): string {
  return mkdtempSync(path.join(workDir, 'tmp-'));
}

/**
 * Connections the gateway has accepted, by the socket they came in on (from /proc/net/unix,
 * where an accepted socket carries its listener's path), for the sockets under `tmp`.
 */
function acceptedConnections(tmp: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const [state, socketPath] = [fields[5], fields[7]];
    if (socketPath === undefined || !socketPath.startsWith(`${tmp}/`)) continue;
    if (state === '03')
      counts.set(path.basename(socketPath), (counts.get(path.basename(socketPath)) ?? 0) + 1);
  }
  return counts;
}

/** Sizes from 1 byte to ~1.5 MiB, all different. */
const sizes = Array.from({ length: 64 }, (_, i) => (i * 7919 * 3 + 1) % (1536 * KiB));

describe('GatewayWorkers', () => {
  it('spreads the calls of 16 threads over both workers, byte-exact, A1-encrypted', async () => {
    const tmp = freshTmp();
    const keyPath = path.join(workDir, 'master.key');
    writeFileSync(keyPath, Buffer.alloc(32, 7).toString('base64'), { mode: 0o600 });
    const host = await startHost(tmp, {
      GatewayWorkers: 2,
      StorageEncryption: { MasterKey: [1, keyPath], WriteFormat: 'A1', MaxConcurrentInputSize: 1 },
    });
    expect(host.ready).toBe(true);
    expect(host.log.some((line) => line.includes('gateway: 2 worker threads (GatewayWorkers)'))).toBe(true);
    expect(host.log.some((line) => /storage area registered .*with 2 worker threads/.test(line))).toBe(true);
    // One gateway process, whatever the number of workers.
    expect(host.gatewayPids()).toHaveLength(1);

    const objects = sizes.map((size, seed) => ({ uuid: randomUUID(), size, seed }));
    const created = await Promise.all(objects.map((o) => host.create(o.uuid, o.size, o.seed)));
    expect(created.map((result) => result.rc)).toEqual(objects.map(() => 0));
    const read = await Promise.all(objects.map((o) => host.readWhole(o.uuid, o.size, o.seed)));
    expect(read.map((result) => [result.rc, result.match])).toEqual(objects.map(() => [0, true]));
    const ranges = await Promise.all(
      objects
        .filter((o) => o.size > 10 * KiB)
        .map((o) => host.readRange(o.uuid, Math.floor(o.size / 3), 4 * KiB, o.seed)),
    );
    expect(ranges.every((result) => result.rc === 0 && result.match === true)).toBe(true);

    // The shim keeps its connections pooled: each worker's socket has accepted some of them.
    const sockets = readdirSync(tmp).flatMap((dir) => readdirSync(path.join(tmp, dir)));
    expect(sockets.sort()).toEqual(['gateway.sock', 'gateway.sock.1']);
    const accepted = acceptedConnections(tmp);
    expect(accepted.get('gateway.sock')).toBeGreaterThanOrEqual(2);
    expect(accepted.get('gateway.sock.1')).toBeGreaterThanOrEqual(2);
    await host.stop();
  }, 120_000);

  // Worker 1 is a worker thread; worker 0 is the main thread, which also supervises.
  it.each([
    [1, 'gateway worker 1 crashed'],
    [0, 'gateway crashed (Error: worker 0 crashes on purpose)'],
  ])(
    'brings the gateway back when worker %i dies, and every object stays whole',
    async (index, logged) => {
      const tmp = freshTmp();
      // A wrapper runtime that makes the worker throw, once, when the trigger file appears.
      const trigger = path.join(workDir, `crash-${randomUUID()}`);
      const hook = path.join(workDir, `crash-worker-${index}.mjs`);
      writeFileSync(
        hook,
        `import { isMainThread, workerData } from 'node:worker_threads';
import { renameSync } from 'node:fs';
if (${index === 0 ? 'isMainThread' : '!isMainThread && workerData?.index === 1'}) {
  setInterval(() => {
    try { renameSync(${JSON.stringify(trigger)}, ${JSON.stringify(`${trigger}.fired`)}); } catch { return; }
    throw new Error('worker ${index} crashes on purpose');
  }, 20).unref();
}
`,
      );
      const wrapper = path.join(workDir, `node-with-crash-hook-${index}`);
      writeFileSync(
        wrapper,
        `#!/bin/sh\nexec ${JSON.stringify(nodeExecutable())} --import ${JSON.stringify(hook)} "$@"\n`,
        {
          mode: 0o755,
        },
      );
      const host = await startHost(tmp, { GatewayWorkers: 2 }, wrapper);
      expect(host.ready).toBe(true);
      const [before] = host.gatewayPids();

      const objects = sizes.slice(0, 32).map((size, seed) => ({ uuid: randomUUID(), size, seed }));
      const created = await Promise.all(objects.map((o) => host.create(o.uuid, o.size, o.seed)));
      expect(created.every((result) => result.rc === 0)).toBe(true);

      writeFileSync(trigger, '');
      await retryFor(20_000, async () => {
        expect(existsSync(`${trigger}.fired`)).toBe(true);
        expect(host.log.some((line) => line.includes(logged))).toBe(true);
        expect(host.log.some((line) => line.includes('gateway restarted'))).toBe(true);
      });
      const [after] = host.gatewayPids();
      expect(after).toBeDefined();
      expect(after).not.toBe(before);
      expect(host.log.some((line) => line.includes(`worker ${index} crashes on purpose`))).toBe(true);
      // One line, never a stack trace (which may quote data).
      expect(host.log.filter((line) => /gateway:\s+at /.test(line))).toEqual([]);

      // The restarted gateway serves both sockets again: everything written before reads back whole.
      const read = await Promise.all(objects.map((o) => host.readWhole(o.uuid, o.size, o.seed)));
      expect(read.map((result) => [result.rc, result.match])).toEqual(objects.map(() => [0, true]));
      const again = { uuid: randomUUID(), size: 300 * KiB, seed: 99 };
      expect((await host.create(again.uuid, again.size, again.seed)).rc).toBe(0);
      expect(await host.readWhole(again.uuid, again.size, again.seed)).toMatchObject({ rc: 0, match: true });
      await host.stop();
    },
    120_000,
  );
});
