import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, isAlive, spawnLogged, waitFor } from './process.js';

const run = promisify(execFile);

export interface PostgresOptions {
  /** Database created for the caller (default "orthanc"). */
  readonly database?: string;
}

export interface StartedPostgres {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly pid: number;
  /** Rows of a query as tab-separated lines (psql -At). */
  query(sql: string): Promise<string[]>;
  stop(): Promise<void>;
}

/** Debian's PostgreSQL server binaries, newest version first. */
function postgresBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((name) => /^\d+$/.test(name))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const version of versions) {
    const bin = path.join(root, version, 'bin');
    if (existsSync(path.join(bin, 'postgres'))) return bin;
  }
  throw new Error('PostgreSQL is not installed: apt-get install postgresql (Debian 12: PostgreSQL 15)');
}

/**
 * A throw-away PostgreSQL cluster on 127.0.0.1 (Debian's initdb and postgres): its own folder in
 * the temporary directory, a free port, password authentication, stopped by PID and removed on stop.
 * PostgreSQL refuses to run as root: as root, the server runs as Debian's `postgres` user.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<StartedPostgres> {
  const bin = postgresBin();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'oos-postgres-'));
  const dataDir = path.join(dir, 'data');
  const user = 'orthanc';
  const password = randomBytes(12).toString('hex');
  const database = options.database ?? 'orthanc';
  const asRoot = process.getuid?.() === 0;
  // As root: run the server's tools as `postgres`, which must own the folder.
  const owner = asRoot ? await postgresUser() : undefined;
  if (owner !== undefined) await chown(dir, owner.uid, owner.gid);
  await chmod(dir, 0o700);
  const asOwner = (command: string, args: string[]): [string, string[]] =>
    owner === undefined
      ? [command, args]
      : [
          'setpriv',
          [`--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--clear-groups', '--', command, ...args],
        ];

  const pwfile = path.join(dir, 'pwfile');
  await writeFile(pwfile, password + '\n', { mode: 0o600 });
  if (owner !== undefined) await chown(pwfile, owner.uid, owner.gid);
  const initdb = asOwner(path.join(bin, 'initdb'), [
    '-D',
    dataDir,
    '-U',
    user,
    `--pwfile=${pwfile}`,
    '--auth=scram-sha-256',
    '--encoding=UTF8',
    '--no-instructions',
  ]);
  await run(initdb[0], initdb[1], { cwd: dir, maxBuffer: 1 << 20 });
  await rm(pwfile);

  const port = await freePort();
  const server = asOwner(path.join(bin, 'postgres'), [
    '-D',
    dataDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `unix_socket_directories=${dir}`,
    '-c',
    'max_connections=200',
    '-c',
    'fsync=off', // a throw-away cluster: the tests kill Orthanc, never PostgreSQL
  ]);
  const started = spawnLogged(server[0], server[1], {
    logFile: path.join(os.tmpdir(), `${path.basename(dir)}.log`),
    cwd: dir,
  });
  const killOnExit = () => isAlive(started.pid) && process.kill(started.pid, 'SIGKILL');
  process.once('exit', killOnExit);
  const env = { ...process.env, PGPASSWORD: password };
  const psql = (db: string, sql: string) =>
    run(
      'psql',
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        user,
        '-d',
        db,
        '-At',
        '-v',
        'ON_ERROR_STOP=1',
        '-c',
        sql,
      ],
      {
        env,
        maxBuffer: 64 << 20,
      },
    );

  const stop = async () => {
    process.off('exit', killOnExit);
    if (isAlive(started.pid)) {
      process.kill(started.pid, 'SIGINT'); // fast shutdown: disconnects clients, then exits
      const deadline = Date.now() + 20_000;
      while (isAlive(started.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (isAlive(started.pid)) process.kill(started.pid, 'SIGKILL');
      while (isAlive(started.pid)) await new Promise((r) => setTimeout(r, 50));
    }
    await rm(dir, { recursive: true, force: true });
    await rm(started.logFile, { force: true });
  };

  try {
    await waitFor(
      `PostgreSQL on port ${port} (log ${started.logFile})`,
      async () => {
        if (!isAlive(started.pid)) throw new Error('the server exited');
        await psql('postgres', 'select 1');
        return true;
      },
      60_000,
    );
    await psql('postgres', `create database ${database}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    database,
    pid: started.pid,
    async query(sql: string) {
      const { stdout } = await psql(database, sql);
      return stdout.split('\n').filter((line) => line !== '');
    },
    stop,
  };
}

/** Debian's `postgres` system user (from the postgresql package). */
async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const { stdout } = await run('id', ['-u', 'postgres']).catch(() => {
    throw new Error(
      'running as root, but there is no "postgres" user to run PostgreSQL as (apt-get install postgresql)',
    );
  });
  const gid = (await run('id', ['-g', 'postgres'])).stdout;
  return { uid: Number(stdout.trim()), gid: Number(gid.trim()) };
}
