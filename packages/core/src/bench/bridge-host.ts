// The fake Orthanc host (bridge-overhead.c): compiled on demand, it loads a built plugin library
// and drives its storage callbacks as Orthanc would. Shared by the bridge benchmarks and tests.
import { execFile, execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
export const FILESYSTEM_PLUGIN = resolve(here, '../../dist/plugin/libOrthancFileSystemObjectStorage.so');
const HOST_SOURCE = resolve(here, '../../src/bench/bridge-overhead.c');
const HOST_INCLUDES = resolve(here, '../../native/testing');

/** Compile the host into `dir`; returns its path. Needs cc and orthanc-dev. */
export function compileBridgeHost(dir: string): string {
  const host = join(dir, 'bridge-host');
  execFileSync('cc', [
    '-O2',
    '-Wall',
    '-Wextra',
    '-I/usr/include/orthanc',
    `-I${HOST_INCLUDES}`,
    '-o',
    host,
    HOST_SOURCE,
    '-ldl',
  ]);
  return host;
}

export interface PhaseReport {
  readonly ms: number;
  readonly calls: number;
  /** VmHWM of the gateway process during the phase (reset before it). */
  readonly gatewayPeakRssKiB: number;
  /** rchar: every byte the gateway read (files and the shim's socket). */
  readonly gatewayReadBytes: number;
  readonly gatewayCpuMs: number;
}

export interface LargeObjectReport {
  readonly bytes: number;
  readonly rangeBytes: number;
  readonly rangeOffset: number;
  readonly gatewayPid: number;
  readonly baselineRssKiB: number;
  readonly phases: { create: PhaseReport; readWhole: PhaseReport; readRange4KiB: PhaseReport };
  /** The first range read of the object (for C1: header not yet cached). */
  readonly range4KiBFirstUs: number;
  readonly range4KiBP50Us: number;
  readonly range4KiBP90Us: number;
  readonly failures: number;
}

export interface LargeObjectRun {
  readonly host: string;
  readonly workDir: string;
  readonly bytes: number;
  readonly ranges: number;
  /** Absent: no encryption. */
  readonly encryption?: { readonly keyPath: string; readonly writeFormat: 'C1' | 'A1' };
}

/**
 * Write one object of `bytes` through the file-system plugin's shim, read it whole, then read
 * 4 KiB ranges from its middle, with the gateway's peak RSS, reads and CPU for each phase.
 */
export async function runLargeObject(run: LargeObjectRun): Promise<LargeObjectReport> {
  const configuration = join(run.workDir, `configuration-${run.encryption?.writeFormat ?? 'plain'}.json`);
  await writeFile(
    configuration,
    JSON.stringify({
      SyncStorageArea: false,
      FileSystemObjectStorage: {
        Directory: join(run.workDir, 'objects'),
        NodeExecutable: process.execPath,
        ...(run.encryption && {
          StorageEncryption: {
            MasterKey: [1, run.encryption.keyPath],
            WriteFormat: run.encryption.writeFormat,
          },
        }),
      },
    }),
  );
  const { stdout } = await promisify(execFile)(
    run.host,
    [FILESYSTEM_PLUGIN, configuration, 'large', String(run.bytes), String(run.ranges)],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout) as LargeObjectReport;
}
