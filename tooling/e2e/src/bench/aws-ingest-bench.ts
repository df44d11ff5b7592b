// AWS ingest benchmark, end to end, against one Ceph RGW started for the run: a real Orthanc with
// libOrthancAwsS3Storage.so (encryption off, C1 encryption, A1 encryption) ingesting re-issued DICOM
// through REST POST /instances, next to raw SDK PutObject (with Content-MD5, as the plugin sends)
// of the same kind of bytes, all with the same number of clients. JSON to stdout and
// bench-results/aws-ingest.json. Figures, never assertions.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { s3ClientConfig } from '@orthanc-object-storage/aws';
import { parseProviderSettings, silentLogger } from '@orthanc-object-storage/core';
import { startRadosgw, type Radosgw } from '@orthanc-object-storage/servers';
import { reissue, type ReissuableFile } from '../harness/dicom/reuid.js';
import { OrthancServer } from '../harness/orthanc.js';
import { mapConcurrent } from '../harness/parallel.js';
import { cpuMs, findGatewayPids } from '../harness/proc.js';
import { artifactDir, nodeExecutable, repoRoot } from '../harness/repo.js';
import {
  benchTemplates,
  measurement,
  median,
  round,
  type Measurement,
  machineInfo,
  workloadReport,
} from './bench-common.js';

const CLIENTS = 4;
const COPIES = Number(process.env['OOS_BENCH_COPIES'] ?? 20);
const RUNS = Number(process.env['OOS_BENCH_RUNS'] ?? 3);
const ARTIFACT = path.join(artifactDir('aws'), 'libOrthancAwsS3Storage.so');

type VariantName = 'plugin' | 'pluginC1' | 'pluginA1' | 'rawSdk';
type Encryption = 'C1' | 'A1' | undefined;

const DESCRIPTIONS: Record<VariantName, string> = {
  plugin: 'Orthanc + libOrthancAwsS3Storage.so, encryption off: REST POST /instances',
  pluginC1: 'Orthanc + libOrthancAwsS3Storage.so, C1 encryption (WriteFormat C1): REST POST /instances',
  pluginA1: 'Orthanc + libOrthancAwsS3Storage.so, A1 encryption (WriteFormat A1): REST POST /instances',
  rawSdk: "raw @aws-sdk/client-s3 PutObject with Content-MD5, the plugin's client settings",
};

interface BucketContents {
  readonly objects: number;
  readonly bytes: number;
}

interface RoundResult {
  readonly ingest: Measurement;
  /** CPU time per ingested instance of Orthanc and of the gateway (from /proc), when measured. */
  readonly cpuMsPerInstance?: { readonly orthanc: number; readonly gateway: number };
  /** What the bucket held afterwards (warm-up included): proof the bytes went to RGW. */
  readonly stored: BucketContents;
}

interface Context {
  readonly rgw: Radosgw;
  readonly s3: S3Client;
  readonly templates: readonly ReissuableFile[];
  readonly keyPath: string;
  readonly workRoot: string;
}

/** The AwsS3Storage section, or the same keys for the raw client, so both talk to RGW alike. */
function awsSection(rgw: Radosgw, bucket: string): Record<string, unknown> {
  return {
    BucketName: bucket,
    Region: rgw.region,
    Endpoint: rgw.endpoint,
    VirtualAddressing: false,
    AccessKey: rgw.accessKey,
    SecretKey: rgw.secretKey,
  };
}

async function listBucket(s3: S3Client, bucket: string): Promise<Array<{ key: string; size: number }>> {
  const objects: Array<{ key: string; size: number }> = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) objects.push({ key: o.Key!, size: o.Size ?? 0 });
    token = page.NextContinuationToken;
  } while (token !== undefined);
  return objects;
}

/** Count, then empty and drop the bucket: RGW's OSD keeps everything in memory. */
async function drainBucket(s3: S3Client, bucket: string): Promise<BucketContents> {
  const objects = await listBucket(s3, bucket);
  await mapConcurrent(objects, 8, (o) => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.key })));
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  return { objects: objects.length, bytes: objects.reduce((sum, o) => sum + o.size, 0) };
}

/** The timed workload: every template COPIES times, each re-issued under a fresh SOP Instance UID. */
function workload(templates: readonly ReissuableFile[]): { work: ReissuableFile[]; bytes: number } {
  const work = Array.from({ length: COPIES }, () => templates).flat();
  return { work, bytes: work.reduce((sum, t) => sum + t.bytes.length, 0) };
}

async function measureOrthanc(
  ctx: Context,
  bucket: string,
  encryption: Encryption,
  workDir: string,
): Promise<{ ingest: Measurement; cpuMsPerInstance: { orthanc: number; gateway: number } }> {
  const orthanc = await OrthancServer.start({
    workDir,
    plugins: [ARTIFACT],
    verbose: false,
    configuration: {
      AwsS3Storage: {
        NodeExecutable: nodeExecutable(),
        ...awsSection(ctx.rgw, bucket),
        ...(encryption && {
          StorageEncryption: { Enable: true, MasterKey: [1, ctx.keyPath], WriteFormat: encryption },
        }),
      },
    },
  });
  try {
    // Warm-up, not timed: one instance per template.
    await mapConcurrent(ctx.templates, CLIENTS, (t) => orthanc.client.uploadBytes(reissue(t)));
    const { work, bytes } = workload(ctx.templates);
    const pids = { orthanc: orthanc.pid!, gateway: findGatewayPids(orthanc.pid!)[0]! };
    const cpuBefore = { orthanc: cpuMs(pids.orthanc) ?? 0, gateway: cpuMs(pids.gateway) ?? 0 };
    const started = performance.now();
    await mapConcurrent(work, CLIENTS, (t) => orthanc.client.uploadBytes(reissue(t)));
    const ingest = measurement(work.length, bytes, (performance.now() - started) / 1000);
    const perInstance = (pid: number, before: number) =>
      round(((cpuMs(pid) ?? before) - before) / work.length, 2);
    return {
      ingest,
      cpuMsPerInstance: {
        orthanc: perInstance(pids.orthanc, cpuBefore.orthanc),
        gateway: perInstance(pids.gateway, cpuBefore.gateway),
      },
    };
  } finally {
    await orthanc.stop();
  }
}

async function measureRawSdk(ctx: Context, bucket: string): Promise<Measurement> {
  const { settings } = parseProviderSettings('aws', { AwsS3Storage: awsSection(ctx.rgw, bucket) });
  const client = new S3Client(s3ClientConfig(settings!, silentLogger));
  const put = async (template: ReissuableFile) => {
    const body = reissue(template);
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: randomUUID(),
        Body: body,
        ContentLength: body.length,
        ContentMD5: createHash('md5').update(body).digest('base64'),
      }),
    );
  };
  try {
    await mapConcurrent(ctx.templates, CLIENTS, put);
    const { work, bytes } = workload(ctx.templates);
    const started = performance.now();
    await mapConcurrent(work, CLIENTS, put);
    return measurement(work.length, bytes, (performance.now() - started) / 1000);
  } finally {
    client.destroy();
  }
}

async function measure(ctx: Context, variant: VariantName, run: number): Promise<RoundResult> {
  const bucket = `bench-${run}-${variant.toLowerCase()}`;
  await ctx.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const workDir = path.join(ctx.workRoot, `orthanc-${bucket}`);
  const encryption: Encryption = variant === 'pluginC1' ? 'C1' : variant === 'pluginA1' ? 'A1' : undefined;
  const measured =
    variant === 'rawSdk'
      ? { ingest: await measureRawSdk(ctx, bucket) }
      : await measureOrthanc(ctx, bucket, encryption, workDir);
  const ingest = measured.ingest;
  rmSync(workDir, { recursive: true, force: true });
  const stored = await drainBucket(ctx.s3, bucket);
  const warmUpBytes = ctx.templates.reduce((sum, t) => sum + t.bytes.length, 0);
  const expectedObjects = ingest.instances + ctx.templates.length;
  const expectedBytes = ingest.bytes + warmUpBytes;
  if (stored.objects < expectedObjects || stored.bytes < expectedBytes) {
    throw new Error(
      `${variant} (run ${run}): bucket ${bucket} holds ${stored.objects} objects / ${stored.bytes} bytes, ` +
        `expected at least ${expectedObjects} / ${expectedBytes}`,
    );
  }
  if (encryption !== undefined && stored.bytes === expectedBytes) {
    throw new Error(`${variant} (run ${run}): objects are no larger than the DICOM: not encrypted?`);
  }
  return { ...measured, stored };
}

async function main(): Promise<void> {
  if (!existsSync(ARTIFACT)) {
    throw new Error(`${ARTIFACT} is missing: build it first (cd packages/aws && pnpm build)`);
  }
  const benchStarted = performance.now();
  const workRoot = mkdtempSync(path.join(os.tmpdir(), 'oos-aws-ingest-bench-'));
  let rgw: Radosgw | undefined;
  let s3: S3Client | undefined;
  try {
    const keyPath = path.join(workRoot, 'master-key-1.b64');
    writeFileSync(keyPath, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    const { files, source } = await benchTemplates(workRoot);
    rgw = await startRadosgw({ workDir: path.join(workRoot, 'radosgw') });
    const { settings } = parseProviderSettings('aws', { AwsS3Storage: awsSection(rgw, 'admin') });
    s3 = new S3Client(s3ClientConfig(settings!, silentLogger));
    const ctx: Context = { rgw, s3, templates: files, keyPath, workRoot };

    const order: VariantName[] = ['rawSdk', 'plugin', 'pluginC1', 'pluginA1'];
    const runs: Record<VariantName, RoundResult[]> = { plugin: [], pluginC1: [], pluginA1: [], rawSdk: [] };
    for (let run = 0; run < RUNS; run++) {
      // Rotate the order each round, so the cluster's drift affects every variant alike.
      for (let i = 0; i < order.length; i++) {
        const variant = order[(i + run) % order.length]!;
        const result = await measure(ctx, variant, run + 1);
        runs[variant].push(result);
        console.error(
          `aws-ingest-bench: run ${run + 1}/${RUNS} ${variant}: ${result.ingest.instancesPerSecond} instances/s, ` +
            `${result.ingest.mebibytesPerSecond} MiB/s`,
        );
      }
    }

    const summarize = (name: VariantName) => ({
      description: DESCRIPTIONS[name],
      instancesPerSecondMedian: median(runs[name].map((r) => r.ingest.instancesPerSecond)),
      mebibytesPerSecondMedian: median(runs[name].map((r) => r.ingest.mebibytesPerSecond)),
      storedObjectsPerInstance: round(
        runs[name][0]!.stored.objects / (runs[name][0]!.ingest.instances + files.length),
        2,
      ),
      ...(runs[name][0]!.cpuMsPerInstance && {
        cpuMsPerInstanceMedian: {
          orthanc: median(runs[name].map((r) => r.cpuMsPerInstance!.orthanc)),
          gateway: median(runs[name].map((r) => r.cpuMsPerInstance!.gateway)),
        },
      }),
      runs: runs[name],
    });
    const summary = {
      plugin: summarize('plugin'),
      pluginC1: summarize('pluginC1'),
      pluginA1: summarize('pluginA1'),
      rawSdk: summarize('rawSdk'),
    };
    const ratio = (name: VariantName) =>
      round(summary[name].instancesPerSecondMedian / summary.rawSdk.instancesPerSecondMedian, 3);
    const report = {
      benchmark: 'aws-ingest',
      date: new Date().toISOString(),
      machine: machineInfo(),
      server: 'Ceph RGW (Debian radosgw, memstore OSD) on 127.0.0.1, one instance for the whole run',
      workload: workloadReport(files, source, {
        copies: COPIES,
        clients: CLIENTS,
        runs: RUNS,
        note:
          'each instance is a template re-issued under a fresh SOP Instance UID; one untimed warm-up ' +
          'instance per template; a fresh bucket (and Orthanc) per variant and round; order rotated per round',
      }),
      results: summary,
      storedObjectsNote:
        'range reads are registered whatever the encryption, so Orthanc stores no "dicom-until-pixel-data" ' +
        'attachment: one object per instance in every variant (the C++ plugins with encryption on: about two)',
      ratiosAgainstRawSdk: {
        pluginIngest: ratio('plugin'),
        pluginC1Ingest: ratio('pluginC1'),
        pluginA1Ingest: ratio('pluginA1'),
      },
      ratioC1toA1Ingest: round(
        summary.pluginC1.instancesPerSecondMedian / summary.pluginA1.instancesPerSecondMedian,
        3,
      ),
      benchSeconds: round((performance.now() - benchStarted) / 1000, 1),
    };
    const json = JSON.stringify(report, null, 2);
    const resultsDir = path.join(repoRoot(), 'tooling', 'e2e', 'bench-results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, 'aws-ingest.json'), json + '\n');
    console.log(json);
  } finally {
    s3?.destroy();
    await rgw?.stop();
    rmSync(workRoot, { recursive: true, force: true });
  }
}

await main();
