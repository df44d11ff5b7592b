import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';

/** Unpacks a release tarball into `dir`; returns the folder it holds. */
export function unpackRelease(tarball: string, dir: string): string {
  if (!existsSync(tarball)) {
    throw new Error(`${tarball} is missing: build its package first (pnpm build)`);
  }
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  const folders = readdirSync(dir);
  if (folders.length !== 1)
    throw new Error(`${tarball} should hold one folder, found: ${folders.join(', ')}`);
  return path.join(dir, folders[0]!);
}

/** This process's PATH without the folders that hold a `node` executable. */
export function pathWithoutNode(searchPath = process.env.PATH ?? ''): string {
  return searchPath
    .split(':')
    .filter((dir) => {
      if (dir === '') return false;
      try {
        accessSync(path.join(dir, 'node'), constants.X_OK);
        return false;
      } catch {
        return true;
      }
    })
    .join(':');
}
