import os from 'node:os';
// Helpers shared by the e2e benchmarks: rates, medians and the re-issuable DICOM workload.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sharedDicomCorpus } from '../harness/dicom/corpus.js';
import { childPids, processExists } from '../harness/proc.js';
import { repoRoot } from '../harness/repo.js';
import { prepareReissuable, type ReissuableFile } from '../harness/dicom/reuid.js';
import { newUid, writeSyntheticInstance } from '../harness/dicom/synthetic.js';

export interface Measurement {
  readonly instances: number;
  readonly bytes: number;
  readonly seconds: number;
  readonly instancesPerSecond: number;
  readonly mebibytesPerSecond: number;
}

export function measurement(instances: number, bytes: number, seconds: number): Measurement {
  return {
    instances,
    bytes,
    seconds: round(seconds, 3),
    instancesPerSecond: round(instances / seconds, 1),
    mebibytesPerSecond: round(bytes / 1048576 / seconds, 1),
  };
}

export function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Real DICOM from ../shared/dicom that can be re-issued under fresh UIDs; generated CT-like slices otherwise. */
export async function benchTemplates(workDir: string): Promise<{ files: ReissuableFile[]; source: string }> {
  const shared = (await sharedDicomCorpus())
    .map((c) => prepareReissuable(c.file))
    .filter((t) => t !== undefined);
  if (shared.length > 0)
    return { files: shared, source: 'real DICOM from ../shared/dicom (explicit VR little endian files)' };
  const dir = path.join(workDir, 'templates');
  mkdirSync(dir, { recursive: true });
  const files: ReissuableFile[] = [];
  for (let i = 0; i < 8; i++) {
    const uid = newUid();
    const written = await writeSyntheticInstance(
      {
        patientId: 'BENCH',
        patientName: 'BENCH^CT',
        studyInstanceUid: uid + '.1',
        seriesInstanceUid: uid + '.2',
        sopInstanceUid: uid + '.3',
        seriesNumber: 1,
        instanceNumber: i + 1,
        rows: 512,
        columns: 512,
        bitsAllocated: 16,
        seed: i,
      },
      path.join(dir, `${i}.dcm`),
    );
    files.push(prepareReissuable(written.file)!);
  }
  return { files, source: 'generated 512x512 16-bit slices (../shared/dicom absent)' };
}

/** What a benchmark ran on, for its JSON report. */
export function machineInfo(): { cpus: number; node: string; platform: string } {
  return { cpus: os.cpus().length, node: process.version, platform: `${os.platform()} ${os.release()}` };
}

/** The `workload` part of a bench report: `copies` re-issued instances of each template per run. */
export function workloadReport(
  files: readonly ReissuableFile[],
  source: string,
  options: { copies: number; clients: number; runs: number; note: string },
) {
  return {
    source,
    templates: files.length,
    instancesPerRun: files.length * options.copies,
    averageInstanceBytes: Math.round(files.reduce((sum, file) => sum + file.bytes.length, 0) / files.length),
    clients: options.clients,
    runs: options.runs,
    note: options.note,
  };
}

/** Print a benchmark's JSON report and keep it as `tooling/e2e/bench-results/<name>.json`. */
export function writeBenchReport(name: string, report: unknown): void {
  const text = JSON.stringify(report, null, 2);
  process.stdout.write(`${text}\n`);
  const dir = path.join(repoRoot(), 'tooling', 'e2e', 'bench-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${name}.json`), `${text}\n`);
}

/** Every process below `pid`, parents before their children. */
function descendants(pid: number): number[] {
  return childPids(pid).flatMap((child) => [child, ...descendants(child)]);
}

/**
 * On SIGINT or SIGTERM, stops every process the bench started (RGW and its Ceph daemons, Orthanc,
 * gateways: SIGTERM, SIGKILL after 5 s), removes `directories()`, then exits. An interrupted run
 * then leaves no server running and no gigabytes in the temp directory.
 */
export function cleanUpOnSignal(directories: () => readonly string[]): void {
  const handler = async (signal: NodeJS.Signals) => {
    // The bench's own calls now fail as their servers stop: expected, and not worth a stack.
    process.on('uncaughtException', () => {});
    process.on('unhandledRejection', () => {});
    const pids = descendants(process.pid).reverse();
    const send = (pid: number, name: NodeJS.Signals) => {
      try {
        process.kill(pid, name);
      } catch {
        // Already gone.
      }
    };
    for (const pid of pids) send(pid, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (pids.some(processExists) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const pid of pids.filter(processExists)) send(pid, 'SIGKILL');
    for (const directory of directories()) rmSync(directory, { recursive: true, force: true });
    console.error(`bench: stopped by ${signal}; its servers are stopped and its files removed`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', (signal) => void handler(signal));
  process.once('SIGTERM', (signal) => void handler(signal));
}
