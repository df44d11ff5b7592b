import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ShimClient } from './shim-client.js';

// The bundled gateway, as the artifact ships it (built by `pnpm build`).
const GATEWAY = resolve(import.meta.dirname, '../../dist/plugin/gateway.mjs');

interface Started {
  child: ChildProcess;
  handshake: Record<string, unknown>;
  stderr: string[];
  exited: Promise<number | null>;
}

function startGateway(
  socketPath: string,
  configuration: unknown,
  nodeOptions: string[] = [],
  configurationPath = '',
): Promise<Started> {
  if (!existsSync(GATEWAY)) throw new Error(`${GATEWAY} is missing: run pnpm build in packages/core first`);
  const child = spawn(process.execPath, [...nodeOptions, GATEWAY], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child
    .stderr!.setEncoding('utf8')
    .on('data', (text: string) => stderr.push(...text.split('\n').filter(Boolean)));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  const envelope = Buffer.from(
    JSON.stringify({
      socketPath,
      section: 'FileSystemObjectStorage',
      provider: 'filesystem',
      configurationPath,
      configuration,
    }),
  );
  const length = Buffer.alloc(4);
  length.writeUInt32LE(envelope.length);
  child.stdin!.write(Buffer.concat([length, envelope])); // stdin stays open: closing it stops the gateway
  return new Promise((resolveStart, reject) => {
    let buffered = '';
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      buffered += text;
      const newline = buffered.indexOf('\n');
      if (newline >= 0)
        resolveStart({ child, handshake: JSON.parse(buffered.slice(0, newline)), stderr, exited });
    });
    child.on('error', reject);
    void exited.then((code) =>
      reject(new Error(`gateway exited (${code}) before its handshake: ${stderr.join(' / ')}`)),
    );
  });
}

describe('gateway process (bundled dist/plugin/gateway.mjs, provider filesystem)', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oos-gateway-process-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('answers ready, serves the socket, logs I/W/E lines and exits when stdin closes', async () => {
    const socketPath = join(dir, 'gateway.sock');
    const started = await startGateway(socketPath, {
      StorageDirectory: join(dir, 'orthanc'),
      FileSystemObjectStorage: {
        Directory: join(dir, 'objects'),
        GatewayCallTimeout: 42,
        GatewayWorkers: 2,
        Typo: 1,
      },
    });
    const sockets = [socketPath, `${socketPath}.1`];
    expect(started.handshake).toEqual({
      status: 'ready',
      rangeReads: true,
      callTimeoutSeconds: 42,
      // "Where is it" always; /move-storage and its job only in hybrid mode.
      restRoutes: ['/object-storage/locations/(patients|studies|series|instances)/([^/]+)'],
      jobTypes: [],
      // One socket per worker thread (GatewayWorkers).
      sockets,
    });
    // Warnings once (by the main thread), whatever the number of workers.
    expect(started.stderr.filter((line) => /^W\t.*Typo/.test(line))).toHaveLength(1);

    // Each worker serves its socket; what one writes, the other reads.
    const [first, second] = await Promise.all(sockets.map((path) => ShimClient.connect(path)));
    for (const path of sockets) expect(((await stat(path)).mode & 0o777).toString(8)).toBe('600');
    const uuid = randomUUID();
    const data = randomBytes(70_000);
    await first!.create(uuid, 1, data);
    expect((await second!.readWhole(uuid, 1)).equals(data)).toBe(true);
    first!.close();
    second!.close();
    expect(
      started.stderr.some((line) => line.startsWith(`I\tcreated attachment ${uuid} of type 1: 70.00 KB in`)),
    ).toBe(true);

    started.child.stdin!.end();
    expect(await started.exited).toBe(0);
    for (const path of sockets) expect(existsSync(path)).toBe(false);
  });

  it("logs Node's process warnings as warnings (W lines), not as bare stderr lines", async () => {
    // A warning emitted once the gateway runs, as an SDK's end-of-support notice is.
    const emitLater = `setTimeout(() => process.emitWarning('probe: this runtime is old', 'NodeDeprecationWarning'), 1500).unref();`;
    const started = await startGateway(
      join(dir, 'gateway.sock'),
      { FileSystemObjectStorage: { Directory: join(dir, 'objects') } },
      ['--import', `data:text/javascript,${encodeURIComponent(emitLater)}`],
    );
    expect(started.handshake.status).toBe('ready');
    const deadline = Date.now() + 10_000;
    while (!started.stderr.some((line) => line.includes('probe:')) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(started.stderr.filter((line) => line.includes('probe:'))).toEqual([
      'W\tNodeDeprecationWarning: probe: this runtime is old',
    ]);
    expect(started.stderr.filter((line) => !/^[IWE]\t/.test(line))).toEqual([]);
    started.child.stdin!.end();
    expect(await started.exited).toBe(0);
  });

  it("takes a relative StorageDirectory from the configuration file's folder, as Orthanc does", async () => {
    const socketPath = join(dir, 'gateway.sock');
    const configurationFile = join(dir, 'etc', 'orthanc.json');
    const started = await startGateway(
      socketPath,
      {
        StorageDirectory: 'OrthancStorage',
        FileSystemObjectStorage: { Directory: join(dir, 'objects'), HybridMode: 'WriteToFileSystem' },
      },
      [],
      configurationFile,
    );
    expect(started.handshake.status).toBe('ready');
    const client = await ShimClient.connect(socketPath);
    const uuid = randomUUID();
    await client.create(uuid, 1, randomBytes(100));
    client.close();
    const stored = join(dir, 'etc', 'OrthancStorage', uuid.slice(0, 2), uuid.slice(2, 4), uuid);
    expect((await stat(stored)).size).toBe(100);
    started.child.stdin!.end();
    expect(await started.exited).toBe(0);
  });

  it('answers a configuration error naming the key, and exits', async () => {
    const started = await startGateway(join(dir, 'gateway.sock'), {
      FileSystemObjectStorage: { Directory: join(dir, 'objects'), GatewayCallTimeout: 'soon' },
    });
    expect(started.handshake.status).toBe('error');
    expect(String(started.handshake.message)).toMatch(/FileSystemObjectStorage.*GatewayCallTimeout/);
    expect(await started.exited).toBe(1);
  });
});
