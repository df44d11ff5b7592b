// `orthanc-object-storage reencrypt` end to end: a real Orthanc 1.10.1 with the aws plugin over
// Ceph RGW. A key is retired from 300 instances while Orthanc runs, a run is interrupted with
// SIGINT and resumed, and a bucket written without encryption is encrypted.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { runCliJson } from './harness/cli.js';
import { generateCorpus, type CorpusFile } from './harness/dicom/corpus.js';
import { AWS_PLUGIN, startEncryptedRgw, type EncryptedRgw } from './harness/encrypted-rgw.js';
import { OrthancServer } from './harness/orthanc.js';
import { mapConcurrent, sleep } from './harness/parallel.js';

const BUCKET = 'reencrypt-e2e';
const PLAIN_BUCKET = 'reencrypt-plain-e2e';
const RETIRED = 7;
const CURRENT = 123456789;
let fixture: EncryptedRgw;
let s3: S3Client;
let corpus: CorpusFile[];
/** Orthanc instance id -> the sha256 its file must have. */
const expected = new Map<string, string>();

interface ReencryptSummary {
  objects: number;
  inventory: { format: string; keyId?: number; objects: number; bytes: number }[];
  matched: { objects: number; bytes: number };
  rewritten: { objects: number; bytes: number };
  goneMeanwhile: number;
  failures: { object: string; detail: string }[];
  interrupted: boolean;
}

function keyFile(id: number): [number, string] {
  const file = path.join(fixture.workDir, `master-key-${id}.b64`);
  writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  return [id, file];
}

/** Rewrite the plugin's section of Orthanc's configuration file, as an operator would. */
function editSection(orthanc: OrthancServer, edit: (section: Record<string, unknown>) => void): void {
  const configuration = JSON.parse(readFileSync(orthanc.configPath, 'utf8')) as Record<string, unknown>;
  edit(configuration.AwsS3Storage as Record<string, unknown>);
  writeFileSync(orthanc.configPath, JSON.stringify(configuration, null, 2));
}

async function listNames(bucket: string): Promise<string[]> {
  const names: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    names.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
  } while (token !== undefined);
  return names.sort();
}

/** Format and master key id of every object, read from its first bytes (A1 and C1: id at offset 2). */
async function headers(bucket: string): Promise<Map<string, string>> {
  const names = await listNames(bucket);
  const found = new Map<string, string>();
  await mapConcurrent(names, 8, async (name) => {
    const answer = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: name, Range: 'bytes=0-5' }));
    const head = Buffer.from(await answer.Body!.transformToByteArray());
    const magic = head.subarray(0, 2).toString('latin1');
    found.set(name, magic === 'A1' || magic === 'C1' ? `${magic} ${head.readUInt32LE(2)}` : 'plaintext');
  });
  return found;
}

function tally(found: Map<string, string>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of found.values()) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

async function expectEveryInstanceReads(orthanc: OrthancServer, instances: Map<string, string>) {
  const wrong: string[] = [];
  await mapConcurrent([...instances], 4, async ([id, sha256]) => {
    const file = await orthanc.client.instanceFileSha256(id);
    if (file.sha256 !== sha256) wrong.push(id);
  });
  expect(wrong).toEqual([]);
}

async function upload(orthanc: OrthancServer, files: CorpusFile[], into: Map<string, string>) {
  await mapConcurrent(files, 4, async (file) => {
    const result = await orthanc.client.uploadFile(file.file);
    expect(result.Status).toBe('Success');
    into.set(result.ID, file.sha256);
  });
}

beforeAll(async () => {
  fixture = await startEncryptedRgw(BUCKET);
  s3 = fixture.s3;
  corpus = await generateCorpus(path.join(fixture.workDir, 'dicom'), {
    patients: 3,
    studiesPerPatient: 2,
    seriesPerStudy: 5,
    instancesPerSeries: 10,
    largeInstanceBytes: 0,
    patientPrefix: 'REENCRYPT',
  });
}, 300_000);

afterAll(async () => {
  await fixture?.stop();
});

describe('reencrypt --retire against a live Orthanc and RGW', () => {
  let orthanc: OrthancServer;
  const retired = () => path.join(fixture.workDir, `master-key-${RETIRED}.b64`);

  afterAll(async () => {
    await orthanc?.stop();
  });

  it('retires key 7 from 300 A1 instances while Orthanc runs; Orthanc without key 7 reads them all', async () => {
    const key7 = keyFile(RETIRED);
    orthanc = await OrthancServer.start({
      workDir: path.join(fixture.workDir, 'orthanc'),
      plugins: [AWS_PLUGIN],
      verbose: false,
      configuration: { AwsS3Storage: fixture.section({}, { MasterKey: key7, WriteFormat: 'A1' }) },
    });
    await upload(orthanc, corpus, expected);
    expect(expected.size).toBe(300);
    expect(tally(await headers(BUCKET))).toEqual({ [`A1 ${RETIRED}`]: 300 });

    // Key 123456789 becomes current, 7 stays readable; Orthanc keeps serving during the rewrite.
    await orthanc.stop();
    const current = keyFile(CURRENT);
    editSection(orthanc, (section) => {
      const encryption = section.StorageEncryption as Record<string, unknown>;
      encryption.MasterKey = current;
      encryption.PreviousMasterKeys = [[RETIRED, retired()]];
      delete encryption.WriteFormat;
    });
    await orthanc.start();

    const dry = await runCliJson<ReencryptSummary>([
      'reencrypt',
      '--config',
      orthanc.configPath,
      '--retire',
      String(RETIRED),
      '--dry-run',
    ]);
    expect(dry.code).toBe(0);
    expect(dry.summary.inventory).toEqual([
      { format: 'A1', keyId: RETIRED, objects: 300, bytes: expect.any(Number) },
    ]);
    expect(dry.summary.matched.objects).toBe(300);
    expect(dry.summary.rewritten.objects).toBe(0);
    expect(tally(await headers(BUCKET))).toEqual({ [`A1 ${RETIRED}`]: 300 });

    const reading = expectEveryInstanceReads(orthanc, expected); // concurrent reads while rewriting
    const { code, summary } = await runCliJson<ReencryptSummary>([
      'reencrypt',
      '--config',
      orthanc.configPath,
      '--retire',
      String(RETIRED),
    ]);
    await reading;
    expect(summary.failures).toEqual([]);
    expect(summary.rewritten.objects).toBe(300);
    expect(code).toBe(0);
    // Every object's header: C1 under the new key, none under 7, and no replacement left over.
    const after = await headers(BUCKET);
    expect(tally(after)).toEqual({ [`C1 ${CURRENT}`]: 300 });
    expect([...after.keys()].every((name) => name.endsWith('.dcm.enc'))).toBe(true);

    await orthanc.stop();
    editSection(orthanc, (section) => {
      (section.StorageEncryption as Record<string, unknown>).PreviousMasterKeys = [];
    });
    await orthanc.start();
    await expectEveryInstanceReads(orthanc, expected);
  }, 600_000);
});

describe('reencrypt --plaintext, interrupted by SIGINT and run again', () => {
  let orthanc: OrthancServer;

  afterAll(async () => {
    await orthanc?.stop();
  });

  it('encrypts a bucket written without encryption, across a SIGINT; Orthanc with encryption on reads every instance', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: PLAIN_BUCKET }));
    const section = fixture.section({ BucketName: PLAIN_BUCKET });
    delete section.StorageEncryption;
    orthanc = await OrthancServer.start({
      workDir: path.join(fixture.workDir, 'orthanc-plain'),
      plugins: [AWS_PLUGIN],
      verbose: false,
      configuration: { AwsS3Storage: section },
    });
    const instances = new Map<string, string>();
    await upload(orthanc, corpus.slice(0, 60), instances);
    expect(tally(await headers(PLAIN_BUCKET))).toEqual({ plaintext: 60 });
    expect((await listNames(PLAIN_BUCKET)).every((name) => name.endsWith('.dcm'))).toBe(true);

    // The operator stops Orthanc, turns encryption on in its configuration, runs reencrypt, starts it.
    await orthanc.stop();
    const key = keyFile(5);
    editSection(orthanc, (plugin) => {
      plugin.StorageEncryption = { Enable: true, MasterKey: key };
    });
    const args = ['reencrypt', '--config', orthanc.configPath, '--plaintext', '--concurrency', '2'];
    // SIGINT once the first encrypted object shows in the bucket: the run is mid-way.
    const first = await runCliJson<ReencryptSummary>(args, (child) => {
      void (async () => {
        while (child.exitCode === null) {
          if ((await listNames(PLAIN_BUCKET)).some((name) => name.endsWith('.enc'))) {
            child.kill('SIGINT');
            return;
          }
          await sleep(20);
        }
      })();
    });
    expect(first.summary.interrupted).toBe(true);
    expect(first.summary.failures).toEqual([]);
    expect(first.code).toBe(1);
    const done = first.summary.rewritten.objects;
    expect(done).toBeGreaterThan(0);
    expect(done).toBeLessThan(60);
    const midway = await listNames(PLAIN_BUCKET);
    expect(midway.filter((name) => name.endsWith('.dcm.enc')).length).toBe(done);
    expect(midway.length).toBe(60); // every instance once: plain or encrypted, never both
    console.log(JSON.stringify({ reencryptSigint: { rewrittenBeforeSigint: done, of: 60 } }));

    const second = await runCliJson<ReencryptSummary>(args);
    expect(second.summary.failures).toEqual([]);
    expect(second.summary.rewritten.objects).toBe(60 - done);
    expect(second.code).toBe(0);
    const after = await headers(PLAIN_BUCKET);
    expect(tally(after)).toEqual({ 'C1 5': 60 });
    expect([...after.keys()].every((name) => name.endsWith('.dcm.enc'))).toBe(true);

    await orthanc.start();
    await expectEveryInstanceReads(orthanc, instances);
  }, 600_000);
});
