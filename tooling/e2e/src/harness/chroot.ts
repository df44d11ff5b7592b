// The newest Debian Orthanc (sid) in a debootstrap chroot, made once and reused. Orthanc runs in
// it inside a private mount namespace, so /proc, /dev and the shared folders it needs vanish with
// it, whatever happens to the test run: nothing ever stays mounted in the cached tree.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { ORTHANC_EXECUTABLE } from './install.js';

/** Outside the repository: 460 MB that jest, prettier and git must never crawl. */
export const DEFAULT_CHROOT_DIR = '/var/cache/orthanc-object-storage-e2e/debian-sid';

export interface NewestOrthancChroot {
  readonly root: string;
  /** Orthanc's version in the chroot, from its Debian package, e.g. `1.13.0+dfsg-1`. */
  readonly packageVersion: string;
}

/** The chroot folder: `OOS_E2E_CHROOT` or the default. */
export function chrootDir(): string {
  return process.env.OOS_E2E_CHROOT ?? DEFAULT_CHROOT_DIR;
}

/** The Debian mirror this machine's apt uses (deb822 or one-line sources), else deb.debian.org. */
export function debianMirror(): string {
  const files = ['/etc/apt/sources.list'];
  const dir = '/etc/apt/sources.list.d';
  if (existsSync(dir)) files.push(...readdirSync(dir).map((name) => path.join(dir, name)));
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const match = /^\s*URIs:\s*(\S+)/.exec(line) ?? /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line);
      const uri = match?.[1];
      if (uri !== undefined && !uri.includes('security') && /^https?:\/\//.test(uri)) return uri;
    }
  }
  return 'http://deb.debian.org/debian';
}

function packageVersion(root: string): string {
  const status = readFileSync(path.join(root, 'var/lib/dpkg/status'), 'utf8');
  const entry = status.split('\n\n').find((block) => /^Package: orthanc$/m.test(block));
  const version = entry && /^Version: (.+)$/m.exec(entry)?.[1];
  if (!version) throw new Error(`no orthanc package in ${root}`);
  return version;
}

/**
 * The chroot with Debian sid's Orthanc, made with debootstrap (about 80 s, 460 MB) when missing.
 * It is built aside and renamed into place, so a failed or concurrent run never leaves a
 * half-made tree at the path. Needs root and Debian's debootstrap.
 */
export function ensureNewestOrthancChroot(log: (line: string) => void = console.log): NewestOrthancChroot {
  const root = chrootDir();
  if (existsSync(path.join(root, ORTHANC_EXECUTABLE.slice(1)))) {
    return { root, packageVersion: packageVersion(root) };
  }
  if (process.getuid?.() !== 0) throw new Error(`making the chroot ${root} needs root (debootstrap, chroot)`);
  if (!existsSync('/usr/sbin/debootstrap')) {
    throw new Error('debootstrap is missing: apt-get install debootstrap (run.sh setup installs it)');
  }
  const suite = process.env.OOS_E2E_CHROOT_SUITE ?? 'sid';
  const building = `${root}.building-${process.pid}`;
  mkdirSync(path.dirname(root), { recursive: true });
  rmSync(building, { recursive: true, force: true });
  const mirror = debianMirror();
  log(`e2e: debootstrap --variant=minbase --include=orthanc,ca-certificates ${suite} ${building} ${mirror}`);
  const started = Date.now();
  const result = spawnSync(
    'debootstrap',
    ['--variant=minbase', '--include=orthanc,ca-certificates', suite, building, mirror],
    { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (result.status !== 0) {
    rmSync(building, { recursive: true, force: true });
    throw new Error(
      `debootstrap failed (status ${result.status}):\n${(result.stdout + result.stderr).split('\n').slice(-30).join('\n')}`,
    );
  }
  try {
    renameSync(building, root);
  } catch (error) {
    // Another run finished first: use its tree.
    rmSync(building, { recursive: true, force: true });
    if (!existsSync(path.join(root, ORTHANC_EXECUTABLE.slice(1)))) throw error;
  }
  log(`e2e: made ${root} in ${Math.round((Date.now() - started) / 1000)} s`);
  return { root, packageVersion: packageVersion(root) };
}

/**
 * The command that runs `executable args` inside the chroot, in a private mount namespace where
 * /proc, /dev and each of `shared` (host folders, seen at the same path inside) are mounted.
 * The command execs down to the executable: its PID is the one to signal.
 */
export function chrootCommand(
  root: string,
  shared: readonly string[],
  executable: string,
  args: readonly string[],
): { command: string; args: string[] } {
  for (const dir of shared) mkdirSync(path.join(root, dir), { recursive: true });
  const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
  const mounts = [
    `mount -t proc proc ${quote(path.join(root, 'proc'))}`,
    `mount --rbind /dev ${quote(path.join(root, 'dev'))}`,
    ...shared.map((dir) => `mount --rbind ${quote(dir)} ${quote(path.join(root, dir))}`),
  ];
  const script = `set -e; ${mounts.join('; ')}; exec chroot ${quote(root)} ${[executable, ...args].map(quote).join(' ')}`;
  return {
    command: 'unshare',
    args: ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script],
  };
}

/** Removes the empty mount points `chrootCommand` made for `shared` (never their content). */
export function removeSharedMountPoints(root: string, shared: readonly string[]): void {
  for (const dir of shared) {
    let current = path.join(root, dir);
    while (current.startsWith(root + '/') && current !== path.join(root, 'tmp')) {
      try {
        rmdirSync(current);
      } catch {
        break;
      }
      current = path.dirname(current);
    }
  }
}
