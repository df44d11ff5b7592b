// The operator tools end to end, with a real Orthanc 1.10.1 and the aws plugin over one Ceph RGW:
// `reencrypt` retires a key from 300 instances while Orthanc runs, encrypts a bucket written
// without encryption across a SIGINT, and the README's "Migrating off disk" guide moves an Orthanc
// with 300 instances on its own disk to the bucket (hybrid mode, /move-storage, verify, hybrid off).
// One RGW and one generated corpus for all: each case has its own bucket and Orthanc.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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
import { OrthancServer, type OrthancConfiguration } from './harness/orthanc.js';
import { mapConcurrent, sleep } from './harness/parallel.js';
import { writeMasterKey } from './backends/backend.js';

const BUCKET = 'reencrypt-e2e';
const PLAIN_BUCKET = 'reencrypt-plain-e2e';
const MIGRATE_BUCKET = 'migrate-off-disk-e2e';
const RETIRED = 7;
/** Instances of the --plaintext case (fewer: it runs reencrypt twice around a SIGINT). */
const PLAINTEXT_INSTANCES = 30;
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
  const key = writeMasterKey(fixture.workDir, id);
  return [key.id, key.path];
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
    await upload(orthanc, corpus.slice(0, PLAINTEXT_INSTANCES), instances);
    expect(tally(await headers(PLAIN_BUCKET))).toEqual({ plaintext: PLAINTEXT_INSTANCES });
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
    expect(done).toBeLessThan(PLAINTEXT_INSTANCES);
    const midway = await listNames(PLAIN_BUCKET);
    expect(midway.filter((name) => name.endsWith('.dcm.enc')).length).toBe(done);
    expect(midway.length).toBe(PLAINTEXT_INSTANCES); // every instance once: plain or encrypted, never both
    console.log(
      JSON.stringify({ reencryptSigint: { rewrittenBeforeSigint: done, of: PLAINTEXT_INSTANCES } }),
    );

    const second = await runCliJson<ReencryptSummary>(args);
    expect(second.summary.failures).toEqual([]);
    expect(second.summary.rewritten.objects).toBe(PLAINTEXT_INSTANCES - done);
    expect(second.code).toBe(0);
    const after = await headers(PLAIN_BUCKET);
    expect(tally(after)).toEqual({ 'C1 5': PLAINTEXT_INSTANCES });
    expect([...after.keys()].every((name) => name.endsWith('.dcm.enc'))).toBe(true);

    await orthanc.start();
    await expectEveryInstanceReads(orthanc, instances);
  }, 600_000);
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) =>
    statSync(path.join(dir, name)).isFile(),
  );
}

describe('migrating off disk (the README guide)', () => {
  let orthanc: OrthancServer | undefined;
  const workDir = () => path.join(fixture.workDir, 'orthanc-migrate');

  /** The same Orthanc (work folder, index, StorageDirectory) with another configuration. */
  async function startOrthanc(
    configuration: OrthancConfiguration,
    plugins: string[],
  ): Promise<OrthancServer> {
    await orthanc?.stop();
    orthanc = await OrthancServer.start({ workDir: workDir(), plugins, verbose: false, configuration });
    return orthanc;
  }

  function awsSection(hybridMode: string): Record<string, unknown> {
    const section = fixture.section({ BucketName: MIGRATE_BUCKET, HybridMode: hybridMode });
    delete section.StorageEncryption;
    return section;
  }

  afterAll(async () => {
    await orthanc?.stop();
  });

  it('moves an Orthanc with 300 instances on its own disk to the bucket; every instance still reads', async () => {
    // Before: Orthanc's own storage, no plugin.
    let server = await startOrthanc({}, []);
    const sha256ById = new Map<string, string>();
    await mapConcurrent(corpus, 4, async (file) => {
      const result = await server.client.uploadFile(file.file);
      expect(result.Status).toBe('Success');
      sha256ById.set(result.ID, file.sha256);
    });
    expect(sha256ById.size).toBe(300);
    expect(filesUnder(server.storageDirectory).length).toBe(300);

    await s3.send(new CreateBucketCommand({ Bucket: MIGRATE_BUCKET }));
    // 1. The plugin in hybrid mode WriteToObjectStorage: new files go to the bucket, old ones still read.
    server = await startOrthanc({ AwsS3Storage: awsSection('WriteToObjectStorage') }, [AWS_PLUGIN]);
    // 2. Move everything.
    const patients = await server.client.getJson<string[]>('/patients');
    const moved = await server.client.postJson<Record<string, number>>('/move-storage', {
      Resources: patients,
      TargetStorage: 'object-storage',
    });
    expect(moved).toMatchObject({ AttachmentsMoved: 300, AttachmentsFailed: 0 });
    expect(filesUnder(server.storageDirectory)).toEqual([]);

    // 3. verify: every object reads, and the bucket and the index agree.
    const check = await runCliJson<{ objects: number; problems: unknown[] }>([
      'verify',
      '--config',
      server.configPath,
      '--orthanc',
      server.url,
    ]);
    expect(check.summary.problems).toEqual([]);
    expect(check.summary.objects).toBe(300);
    expect(check.code).toBe(0);

    // 4. Hybrid mode off: bucket only. Every instance reads byte-exact.
    server = await startOrthanc({ AwsS3Storage: awsSection('Disabled') }, [AWS_PLUGIN]);
    const wrong: string[] = [];
    await mapConcurrent([...sha256ById], 4, async ([id, sha256]) => {
      if ((await server.client.instanceFileSha256(id)).sha256 !== sha256) wrong.push(id);
    });
    expect(wrong).toEqual([]);
  }, 600_000);
});
