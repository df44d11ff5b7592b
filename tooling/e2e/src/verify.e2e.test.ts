// `orthanc-object-storage verify` end to end: a real Orthanc with the aws plugin (C1 encryption)
// over Ceph RGW, then objects deleted, added and truncated behind Orthanc's back.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { AWS_PLUGIN, startEncryptedRgw, type EncryptedRgw } from './harness/encrypted-rgw.js';
import { OrthancServer } from './harness/orthanc.js';
import { runCli, runCliJson } from './harness/cli.js';
import { sharedOrGeneratedCorpus } from './harness/dicom/corpus.js';

const BUCKET = 'verify-e2e';
let fixture: EncryptedRgw;
let workDir: string;
let s3: S3Client;
let orthanc: OrthancServer;

interface VerifySummary {
  objects: number;
  bytes: number;
  seconds: number;
  objectsPerSecond: number;
  megabytesPerSecond: number;
  problems: { kind: string; object: string; instance?: string }[];
  orphansWouldBeRemoved: string[];
}

async function verify(...extra: string[]): Promise<{ code: number; summary: VerifySummary }> {
  const args = [
    'verify',
    '--config',
    orthanc.configPath,
    '--orthanc',
    `http://127.0.0.1:${orthanc.httpPort}`,
  ];
  const { code, summary } = await runCliJson<VerifySummary>([...args, ...extra]);
  return { code, summary };
}

async function objectNames(): Promise<string[]> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  return (page.Contents ?? []).map((o) => o.Key!).sort();
}

beforeAll(async () => {
  fixture = await startEncryptedRgw(BUCKET);
  ({ workDir, s3 } = fixture);
  orthanc = await OrthancServer.start({
    workDir: path.join(workDir, 'orthanc'),
    plugins: [AWS_PLUGIN],
    verbose: false,
    configuration: { AwsS3Storage: fixture.section() },
  });
  for (const source of await sharedOrGeneratedCorpus(path.join(workDir, 'corpus'), 'VERIFY')) {
    await orthanc.client.uploadFile(source.file);
  }
}, 300_000);

afterAll(async () => {
  await orthanc?.stop();
  await fixture?.stop();
});

describe('verify against Orthanc and RGW', () => {
  it('reports 0 problems on a clean bucket and exits 0', async () => {
    const names = await objectNames();
    expect(names.length).toBeGreaterThanOrEqual(10);
    const { code, summary } = await verify();
    expect(summary.problems).toEqual([]);
    expect(summary.objects).toBe(names.length);
    expect(code).toBe(0);
    // Figures for the README (not asserted: 2 shared noisy cores), at two concurrency levels.
    for (const concurrency of ['1', '8']) {
      const run = await verify('--concurrency', concurrency);
      expect(run.summary.problems).toEqual([]);
      const { objects, bytes, seconds, objectsPerSecond, megabytesPerSecond } = run.summary;
      console.log(
        JSON.stringify({
          verify: { concurrency, objects, bytes, seconds, objectsPerSecond, megabytesPerSecond },
        }),
      );
    }
  });

  it('reports exactly a deleted, a stray and a truncated object, and exits non-zero', async () => {
    const [deleted, truncated] = (await objectNames()).filter((n) => n.endsWith('.dcm.enc'));
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: deleted! }));
    const stray = `${randomUUID()}.dcm.enc`;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: stray, Body: Buffer.from('stray object') }));
    const original = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: truncated! }));
    const bytes = Buffer.from(await original.Body!.transformToByteArray());
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: truncated!, Body: bytes.subarray(0, bytes.length - 100) }),
    );

    const { code, summary } = await verify();
    const found = summary.problems.map((p) => [p.kind, p.object]).sort();
    expect(found).toEqual(
      [
        ['missing', deleted!],
        ['orphan', stray],
        ['corrupt', truncated!],
      ].sort(),
    );
    expect(summary.problems.find((p) => p.kind === 'missing')?.instance).toMatch(/^[0-9a-f-]{44}$/);
    expect(code).toBe(1);

    // --delete-orphans --dry-run names the stray object and removes nothing; without --dry-run it goes.
    const dry = await verify('--delete-orphans', '--dry-run');
    expect(dry.summary.orphansWouldBeRemoved).toEqual([stray]);
    expect(await objectNames()).toContain(stray);
    await verify('--delete-orphans');
    expect(await objectNames()).not.toContain(stray);
  });

  it('takes no credentials from argv', async () => {
    const { code, stderr } = await runCli(['verify', '--config', orthanc.configPath, '--password', 'x']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/Unknown option '--password'/);
  });
});
