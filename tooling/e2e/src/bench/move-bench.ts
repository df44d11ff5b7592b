// Move benchmark: POST /move-storage of 300 instances from the file system to the object storage
// and back, through a real Orthanc in HybridMode WriteToFileSystem. Variants: core's file-system
// backend, and the aws plugin on Ceph RGW, plain and A1-encrypted. JSON to stdout and
// bench-results/move.json. Figures, never assertions (beyond checking that everything moved).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BackendStore, E2EBackend } from '../backends/backend.js';
import { fileSystemBackend } from '../backends/filesystem.js';
import { awsBackend } from '../backends/aws.js';
import { reissue } from '../harness/dicom/reuid.js';
import { OrthancServer } from '../harness/orthanc.js';
import { mapConcurrent } from '../harness/parallel.js';
import { cpuSeconds, findGatewayPids } from '../harness/proc.js';
import { nodeExecutable } from '../harness/repo.js';
import {
  benchTemplates,
  cleanUpOnSignal,
  machineInfo,
  measurement,
  median,
  round,
  type Measurement,
  writeBenchReport,
} from './bench-common.js';
import { writeMasterKey } from '../backends/backend.js';

const INSTANCES = Number(process.env['OOS_BENCH_INSTANCES'] ?? 300);
const RUNS = Number(process.env['OOS_BENCH_RUNS'] ?? 3);
const CLIENTS = 4;

interface Variant {
  readonly name: string;
  readonly backend: E2EBackend;
  readonly encrypted: boolean;
}

interface MoveContent {
  AttachmentsMoved: number;
  AttachmentsAlreadyOnTarget: number;
  AttachmentsFailed: number;
  BytesMoved: number;
}

interface DirectionResult extends Measurement {
  readonly attachments: number;
  readonly cpuMsPerAttachment: { orthanc: number; gateway: number };
}

async function moveAll(orthanc: OrthancServer, studies: string[], target: string): Promise<DirectionResult> {
  const orthancPid = orthanc.pid!;
  const gatewayPid = findGatewayPids(orthancPid)[0]!;
  const cpuBefore = { orthanc: cpuSeconds(orthancPid), gateway: cpuSeconds(gatewayPid) };
  const started = performance.now();
  const content = await orthanc.client.postJson<MoveContent>('/move-storage', {
    Resources: studies,
    TargetStorage: target,
  });
  const seconds = (performance.now() - started) / 1000;
  if (content.AttachmentsFailed !== 0 || content.AttachmentsAlreadyOnTarget !== 0) {
    throw new Error(`move to ${target}: ${JSON.stringify(content)}`);
  }
  const attachments = content.AttachmentsMoved;
  const cpu = (pid: number, before: number) => round(((cpuSeconds(pid) - before) * 1000) / attachments, 3);
  return {
    ...measurement(attachments, content.BytesMoved, seconds),
    attachments,
    cpuMsPerAttachment: {
      orthanc: cpu(orthancPid, cpuBefore.orthanc),
      gateway: cpu(gatewayPid, cpuBefore.gateway),
    },
  };
}

async function measure(
  variant: Variant,
  store: BackendStore,
  workDir: string,
  keyPath: string,
  files: Buffer[],
) {
  const orthanc = await OrthancServer.start({
    workDir,
    plugins: [variant.backend.artifactPath],
    verbose: false,
    configuration: {
      [variant.backend.sectionName]: {
        NodeExecutable: nodeExecutable(),
        ...store.section(variant.encrypted ? { id: 1, path: keyPath } : undefined),
        HybridMode: 'WriteToFileSystem',
      },
    },
  });
  try {
    await mapConcurrent(files, CLIENTS, (bytes) => orthanc.client.uploadBytes(bytes));
    const studies = await orthanc.client.getJson<string[]>('/studies');
    const toObjectStorage = await moveAll(orthanc, studies, 'object-storage');
    const toFileSystem = await moveAll(orthanc, studies, 'file-system');
    return { toObjectStorage, toFileSystem };
  } finally {
    await orthanc.stop();
  }
}

function summarize(results: { toObjectStorage: DirectionResult; toFileSystem: DirectionResult }[]) {
  const pick = (direction: 'toObjectStorage' | 'toFileSystem') => ({
    attachments: results[0]![direction].attachments,
    bytes: results[0]![direction].bytes,
    filesPerSecond: median(results.map((r) => r[direction].instancesPerSecond)),
    mebibytesPerSecond: median(results.map((r) => r[direction].mebibytesPerSecond)),
    cpuMsPerAttachment: {
      orthanc: median(results.map((r) => r[direction].cpuMsPerAttachment.orthanc)),
      gateway: median(results.map((r) => r[direction].cpuMsPerAttachment.gateway)),
    },
  });
  return { toObjectStorage: pick('toObjectStorage'), toFileSystem: pick('toFileSystem') };
}

async function main(): Promise<void> {
  const workRoot = mkdtempSync(path.join(os.tmpdir(), 'oos-move-bench-'));
  cleanUpOnSignal(() => [workRoot]);
  const keyPath = writeMasterKey(workRoot, 1).path;
  const filesystem = fileSystemBackend();
  const aws = awsBackend();
  const variants: Variant[] = [
    { name: 'filesystem', backend: filesystem, encrypted: false },
    { name: 'aws', backend: aws, encrypted: false },
    { name: 'awsEncrypted', backend: aws, encrypted: true },
  ];
  try {
    await filesystem.setUp(path.join(workRoot, 'filesystem'));
    await aws.setUp(path.join(workRoot, 'aws'));
    const templates = await benchTemplates(workRoot);
    const runs = new Map<string, { toObjectStorage: DirectionResult; toFileSystem: DirectionResult }[]>();
    for (let run = 0; run < RUNS; run++) {
      // Fresh instances (new UIDs) per run; the variants' order rotates.
      const files = Array.from({ length: INSTANCES }, (_, i) =>
        reissue(templates.files[i % templates.files.length]!),
      );
      for (let i = 0; i < variants.length; i++) {
        const variant = variants[(i + run) % variants.length]!;
        const store = await variant.backend.createStore(`bench-${variant.name}-${run}`);
        const dir = path.join(workRoot, `${variant.name}-${run}`);
        mkdirSync(dir, { recursive: true });
        const result = await measure(variant, store, dir, keyPath, files);
        runs.set(variant.name, [...(runs.get(variant.name) ?? []), result]);
        process.stderr.write(`run ${run + 1}/${RUNS} ${variant.name}: ${JSON.stringify(result)}\n`);
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const report = {
      benchmark: 'move-storage',
      machine: machineInfo(),
      loadAverage: os.loadavg().map((value) => round(value, 2)),
      workload: {
        instances: INSTANCES,
        source: templates.source,
        runs: RUNS,
        note:
          'POST /move-storage (synchronous) of every study: file system -> object storage, then back. ' +
          'Each attachment is read, written, read back and compared (size, sha256, Orthanc MD5), then removed from the source. ' +
          'Rates are attachments (files) per second and MiB/s of plaintext; CPU per attachment from /proc (utime+stime).',
      },
      variants: Object.fromEntries(
        [...runs.entries()].map(([name, results]) => [name, { median: summarize(results), runs: results }]),
      ),
    };
    writeBenchReport('move', report);
  } finally {
    await aws.tearDown();
    await filesystem.tearDown();
    rmSync(workRoot, { recursive: true, force: true });
  }
}

await main();
