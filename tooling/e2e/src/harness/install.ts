import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';

export const ORTHANC_EXECUTABLE = '/usr/sbin/Orthanc';

/**
 * Install Debian's orthanc and orthanc-dev when Orthanc is missing. A temporary policy-rc.d keeps
 * the package from starting its system service, which would hold port 8042 and /var/lib/orthanc.
 */
export function ensureOrthancInstalled(log: (line: string) => void = console.log): string {
  if (existsSync(ORTHANC_EXECUTABLE)) return ORTHANC_EXECUTABLE;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${ORTHANC_EXECUTABLE} is missing and installing it needs root: run ` +
        '`apt-get install -y --no-install-recommends orthanc orthanc-dev` first',
    );
  }
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const run = (args: string[]): void => {
      log(`e2e: running apt-get ${args.join(' ')}`);
      const result = spawnSync('apt-get', args, {
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
      if (result.status !== 0)
        throw new Error(`apt-get ${args.join(' ')} failed with status ${result.status}`);
    };
    run(['update']);
    run(['install', '-y', '--no-install-recommends', 'orthanc', 'orthanc-dev']);
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
  if (!existsSync(ORTHANC_EXECUTABLE))
    throw new Error(`apt-get installed orthanc but ${ORTHANC_EXECUTABLE} is missing`);
  log(`e2e: installed Debian's Orthanc at ${ORTHANC_EXECUTABLE}`);
  return ORTHANC_EXECUTABLE;
}
