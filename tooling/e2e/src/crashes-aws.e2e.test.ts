// Crashes during an ingest (AWS plugin on Ceph RGW, A1 encryption on): kill -9 of Orthanc, and
// separately of the gateway. After a restart every indexed instance reads back byte-exact. Objects
// without an index row (written, but the crash came before Orthanc committed) are counted.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { rgwClientConfig, startRadosgw, type Radosgw } from '@orthanc-object-storage/servers';
import { generateCorpus, type CorpusFile } from './harness/dicom/corpus.js';
import { OrthancServer } from './harness/orthanc.js';
import { mapConcurrent, sleep } from './harness/parallel.js';
import { findGatewayPids } from './harness/proc.js';
import { artifactDir, nodeExecutable } from './harness/repo.js';
import { uuidOfObject } from './scale-out.js';

const PLUGIN = path.join(artifactDir('aws'), 'libOrthancAwsS3Storage.so');
const BUCKET = 'crashes';
const PER_CRASH = 100;

let workDir: string;
let rgw: Radosgw;
let s3: S3Client;
let orthanc: OrthancServer;
let corpus: CorpusFile[];

beforeAll(async () => {
  workDir = mkdtempSync(path.join(os.tmpdir(), 'oos-crashes-aws-'));
  rgw = await startRadosgw({ workDir: path.join(workDir, 'radosgw') });
  s3 = new S3Client(rgwClientConfig(rgw));
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const keyPath = path.join(workDir, 'master-key-1.b64');
  writeFileSync(keyPath, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  orthanc = await OrthancServer.start({
    workDir: path.join(workDir, 'orthanc'),
    plugins: [PLUGIN],
    verbose: false,
    configuration: {
      AwsS3Storage: {
        BucketName: BUCKET,
        Region: rgw.region,
        Endpoint: rgw.endpoint,
        VirtualAddressing: false,
        AccessKey: rgw.accessKey,
        SecretKey: rgw.secretKey,
        NodeExecutable: nodeExecutable(),
        StorageEncryption: { Enable: true, MasterKey: [1, keyPath] },
      },
    },
  });
  corpus = await generateCorpus(path.join(workDir, 'dicom'), {
    patients: (2 * PER_CRASH) / 20,
    studiesPerPatient: 2,
    seriesPerStudy: 2,
    instancesPerSeries: 5,
    largeInstanceBytes: 0,
    patientPrefix: `CRASH-${Date.now()}`,
  });
}, 300_000);

afterAll(async () => {
  await orthanc?.stop();
  s3?.destroy();
  await rgw?.stop();
  rmSync(workDir, { recursive: true, force: true });
}, 120_000);

/** Ingest `batch` with 4 clients, crashing something once a quarter of it is acknowledged. */
async function ingestAndCrash(batch: CorpusFile[], crash: () => Promise<void>): Promise<number> {
  let acknowledged = 0;
  let crashed: Promise<void> | undefined;
  await mapConcurrent(batch, 4, async (source) => {
    const ok = await orthanc.client.uploadFile(source.file).then(
      () => true,
      () => false,
    );
    if (ok) acknowledged += 1;
    if (acknowledged >= batch.length / 4) crashed ??= crash();
  });
  await crashed;
  return acknowledged;
}

/** Every indexed instance reads back as one of the corpus files; returns the objects without an index row. */
async function checkAfterRestart(label: string, acknowledgedAtLeast: number): Promise<number> {
  const known = new Set(corpus.map((c) => c.sha256));
  const instances = await orthanc.client.instances();
  expect(instances.length).toBeGreaterThanOrEqual(acknowledgedAtLeast);
  const bad = await mapConcurrent(instances, 4, async (id) => {
    const got = await orthanc.client.instanceFileSha256(id);
    return known.has(got.sha256) ? undefined : id;
  });
  expect(bad.filter((id) => id !== undefined)).toEqual([]);
  const indexed = new Set<string>();
  await mapConcurrent(instances, 4, async (id) => {
    for (const attachment of await orthanc.client.getJson<string[]>(`/instances/${id}/attachments`)) {
      indexed.add(await orthanc.client.attachmentUuid(id, attachment));
    }
  });
  const names: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: token }));
    for (const object of page.Contents ?? []) names.push(object.Key!);
    token = page.NextContinuationToken;
  } while (token !== undefined);
  const stored = names.map((name) => uuidOfObject(name)!);
  expect([...indexed].filter((uuid) => !stored.includes(uuid))).toEqual([]); // nothing indexed is missing
  const orphans = stored.filter((uuid) => !indexed.has(uuid)).length;
  console.log(
    `${label}: ${instances.length} instances indexed, all read back; ${orphans} objects without an index row`,
  );
  return orphans;
}

test('Orthanc killed with -9 during an ingest: after a restart every indexed instance reads back', async () => {
  const batch = corpus.slice(0, PER_CRASH);
  const acknowledged = await ingestAndCrash(batch, () => orthanc.kill9());
  expect(orthanc.running).toBe(false);
  await orthanc.start(60_000);
  await checkAfterRestart('kill -9 Orthanc', acknowledged);
}, 600_000);

test('the gateway killed with -9 during an ingest: calls in flight fail, the rest succeed, all indexed read back', async () => {
  const before = (await orthanc.client.statistics()).CountInstances;
  const batch = corpus.slice(PER_CRASH, 2 * PER_CRASH);
  const gateway = findGatewayPids(orthanc.pid!)[0]!;
  const acknowledged = await ingestAndCrash(batch, async () => {
    process.kill(gateway, 'SIGKILL');
  });
  expect(orthanc.running).toBe(true);
  // Calls after the restart of the gateway succeed: most of the batch is acknowledged.
  expect(acknowledged).toBeGreaterThan(batch.length / 2);
  await sleep(500);
  const restarted = findGatewayPids(orthanc.pid!);
  expect(restarted.length).toBe(1);
  expect(restarted[0]).not.toBe(gateway);
  expect((await orthanc.client.statistics()).CountInstances).toBeGreaterThanOrEqual(before + acknowledged);
  await orthanc.restart();
  await checkAfterRestart('kill -9 gateway', before + acknowledged);
}, 600_000);
