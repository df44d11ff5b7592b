import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, isAlive, spawnLogged, stopProcess, waitFor } from './process.js';

const run = promisify(execFile);

export interface RadosgwOptions {
  readonly workDir?: string;
  /** Also serve https with this PEM certificate and key, at `httpsEndpoint`. */
  readonly tls?: { readonly certPath: string; readonly keyPath: string };
  /** Capacity of the in-memory OSD (default 3 GiB); it takes RAM as objects are stored. */
  readonly memoryBytes?: number;
}

export interface Radosgw {
  readonly endpoint: string;
  readonly httpsEndpoint: string | undefined;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly region: string;
  readonly workDir: string;
  /** Another S3 user, with no access to the first user's buckets. */
  addUser(uid: string): Promise<{ accessKey: string; secretKey: string }>;
  /** SIGSTOP / SIGCONT the S3 gateway: requests hang, as with a stalled server. */
  pause(): void;
  resume(): void;
  /** Stop / start only the S3 gateway (same port): objects survive, the OSD keeps running. */
  stopGateway(): Promise<void>;
  startGateway(): Promise<void>;
  /** PIDs of the daemons that serve S3 requests (radosgw, ceph-osd), for CPU figures from /proc. */
  servingPids(): { radosgw: number; osd: number };
  stop(): Promise<void>;
}

/**
 * A throw-away Ceph cluster on loopback (Debian's ceph-mon, ceph-osd, radosgw): one monitor, one
 * in-memory OSD, no manager, cephx keys made per run. Every file lives in `workDir`.
 */
export async function startRadosgw(options: RadosgwOptions = {}): Promise<Radosgw> {
  const workDir = options.workDir ?? (await mkdtemp(path.join(os.tmpdir(), 'oos-radosgw-')));
  await mkdir(workDir, { recursive: true });
  await requireFreeDisk(workDir);
  const [monPort, rgwPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
  const conf = path.join(workDir, 'ceph.conf');
  const keyring = path.join(workDir, 'keyring');
  for (const dir of ['mon', 'osd', 'run', 'log']) await mkdir(path.join(workDir, dir), { recursive: true });
  const monAddress = `[v2:127.0.0.1:${monPort}]`;
  const fsid = randomUUID();
  const tls = options.tls;
  const frontend =
    `beast endpoint=127.0.0.1:${rgwPort}` +
    (tls
      ? ` ssl_endpoint=127.0.0.1:${tlsPort} ssl_certificate=${tls.certPath} ssl_private_key=${tls.keyPath}`
      : '');
  await writeFile(conf, cephConf(workDir, fsid, monAddress, frontend, options.memoryBytes ?? 3 * 1024 ** 3));

  const ceph = (tool: string, ...args: string[]) => run(tool, ['-c', conf, ...args], { maxBuffer: 1 << 20 });
  const spawnDaemon = (tool: string, ...args: string[]) =>
    spawnLogged(tool, ['-c', conf, '-f', ...args], { logFile: path.join(workDir, 'log', `${tool}.out`) }).pid;
  const pids: number[] = [];
  // If the test process dies without stop(), take the daemons with it.
  const killAll = () => pids.forEach((pid) => isAlive(pid) && process.kill(pid, 'SIGKILL'));
  process.once('exit', killAll);
  const stop = async (keepFiles = false) => {
    process.off('exit', killAll);
    for (const pid of pids.reverse()) await stopProcess(pid);
    if (options.workDir === undefined && !keepFiles) await rm(workDir, { recursive: true, force: true });
  };

  try {
    const caps: Record<string, string[]> = {
      'mon.': ['mon', 'allow *'],
      'client.admin': ['mon', 'allow *', 'osd', 'allow *', 'mgr', 'allow *'],
      'osd.0': ['mon', 'allow profile osd', 'osd', 'allow *'],
      'client.rgw': ['mon', 'allow rw', 'osd', 'allow rwx'],
    };
    for (const [name, list] of Object.entries(caps)) {
      const capArgs = list.flatMap((v, i) => (i % 2 === 0 ? ['--cap', v] : [v]));
      const create = name === 'mon.' ? ['--create-keyring'] : [];
      await run('ceph-authtool', [keyring, ...create, '--gen-key', '-n', name, ...capArgs]);
    }
    const monmap = path.join(workDir, 'monmap');
    await run('monmaptool', ['--create', '--addv', 'a', monAddress, '--fsid', fsid, monmap]);
    await ceph('ceph-mon', '--mkfs', '-i', 'a', '--monmap', monmap, '--keyring', keyring);
    pids.push(spawnDaemon('ceph-mon', '-i', 'a'));

    const osdUuid = randomUUID();
    await ceph('ceph', '--connect-timeout', '30', 'osd', 'new', osdUuid, '0');
    await ceph('ceph-osd', '-i', '0', '--mkfs', '--osd-uuid', osdUuid);
    pids.push(spawnDaemon('ceph-osd', '-i', '0'));

    const addUser = async (uid: string) => {
      const created = await ceph('radosgw-admin', 'user', 'create', '--uid', uid, '--display-name', uid);
      const { access_key: accessKey, secret_key: secretKey } = JSON.parse(created.stdout).keys[0];
      return { accessKey: String(accessKey), secretKey: String(secretKey) };
    };
    // The user's creation sets up the default zone, which the storage class is added to.
    const user = await addUser('oos');
    const placement = ['--placement-id', 'default-placement', '--storage-class', 'STANDARD_IA'];
    await ceph('radosgw-admin', 'zonegroup', 'placement', 'add', '--rgw-zonegroup', 'default', ...placement);
    await ceph(
      'radosgw-admin',
      'zone',
      'placement',
      'add',
      '--rgw-zone',
      'default',
      ...placement,
      '--data-pool',
      'default.rgw.buckets.data',
    );

    const endpoint = `http://127.0.0.1:${rgwPort}`;
    const startGateway = async () => {
      if (pids.length > 2) return;
      pids.push(spawnDaemon('radosgw', '-n', 'client.rgw'));
      await waitFor('radosgw', async () => ((await fetch(endpoint)).ok ? true : undefined), 60_000);
    };
    await startGateway();
    const gatewayPid = () => {
      const pid = pids[2]; // after ceph-mon and ceph-osd
      if (pid === undefined) throw new Error('radosgw is stopped');
      return pid;
    };
    return {
      endpoint,
      httpsEndpoint: tls ? `https://127.0.0.1:${tlsPort}` : undefined,
      ...user,
      region: 'us-east-1',
      workDir,
      addUser,
      pause: () => process.kill(gatewayPid(), 'SIGSTOP'),
      resume: () => process.kill(gatewayPid(), 'SIGCONT'),
      stopGateway: async () => {
        if (pids.length > 2) await stopProcess(pids.pop()!);
      },
      startGateway,
      servingPids: () => ({ radosgw: gatewayPid(), osd: pids[1]! }),
      stop: () => stop(),
    };
  } catch (error) {
    await stop(true);
    throw new Error(`could not start Ceph radosgw (logs in ${workDir}/log): ${(error as Error).message}`);
  }
}

/** The monitor stops below 5% free disk; fail early with a clear message instead. */
async function requireFreeDisk(dir: string): Promise<void> {
  const { bavail, blocks } = await statfs(dir);
  if (bavail / blocks < 0.06) throw new Error(`Ceph needs more than 5% free disk where ${dir} is`);
}

function cephConf(
  dir: string,
  fsid: string,
  monAddress: string,
  frontend: string,
  memoryBytes: number,
): string {
  return `[global]
fsid = ${fsid}
mon host = ${monAddress}
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = ${dir}/keyring
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
osd objectstore = memstore
memstore device bytes = ${memoryBytes}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 10
[mon.a]
mon data = ${dir}/mon
[osd.0]
osd data = ${dir}/osd
[client.rgw]
rgw frontends = ${frontend}
`;
}

/**
 * Settings for a plain AWS SDK `S3Client` on this RGW: path style, and checksums only when
 * required (RGW 16 refuses aws-chunked uploads).
 */
export function rgwClientConfig(rgw: Radosgw) {
  return {
    region: rgw.region,
    endpoint: rgw.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKey, secretAccessKey: rgw.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED' as const,
    responseChecksumValidation: 'WHEN_REQUIRED' as const,
  };
}
