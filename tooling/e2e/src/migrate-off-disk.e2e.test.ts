// The README's "Migrating off disk" guide, step by step, with a real Orthanc 1.10.1 and the aws
// plugin over Ceph RGW: an Orthanc with its own disk storage and 300 instances becomes
// bucket-only (hybrid mode WriteToObjectStorage, /move-storage of everything, verify, hybrid off).
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { runCliJson } from './harness/cli.js';
import { generateCorpus } from './harness/dicom/corpus.js';
import { AWS_PLUGIN, startEncryptedRgw, type EncryptedRgw } from './harness/encrypted-rgw.js';
import { OrthancServer, type OrthancConfiguration } from './harness/orthanc.js';
import { mapConcurrent } from './harness/parallel.js';

const BUCKET = 'migrate-off-disk';
let fixture: EncryptedRgw;
let orthanc: OrthancServer | undefined;
const workDir = () => path.join(fixture.workDir, 'orthanc');

/** The same Orthanc (work folder, index, StorageDirectory) with another configuration. */
async function startOrthanc(configuration: OrthancConfiguration, plugins: string[]): Promise<OrthancServer> {
  await orthanc?.stop();
  orthanc = await OrthancServer.start({ workDir: workDir(), plugins, verbose: false, configuration });
  return orthanc;
}

function awsSection(hybridMode: string): Record<string, unknown> {
  const section = fixture.section({ HybridMode: hybridMode });
  delete section.StorageEncryption;
  return section;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) =>
    statSync(path.join(dir, name)).isFile(),
  );
}

beforeAll(async () => {
  fixture = await startEncryptedRgw(BUCKET);
}, 120_000);

afterAll(async () => {
  await orthanc?.stop();
  await fixture?.stop();
});

it('moves an Orthanc with 300 instances on its own disk to the bucket; every instance still reads', async () => {
  const corpus = await generateCorpus(path.join(fixture.workDir, 'dicom'), {
    patients: 3,
    studiesPerPatient: 2,
    seriesPerStudy: 5,
    instancesPerSeries: 10,
    largeInstanceBytes: 0,
    patientPrefix: 'MIGRATE',
  });
  // Before: Orthanc's own storage, no plugin.
  let server = await startOrthanc({}, []);
  const expected = new Map<string, string>();
  await mapConcurrent(corpus, 4, async (file) => {
    const result = await server.client.uploadFile(file.file);
    expect(result.Status).toBe('Success');
    expected.set(result.ID, file.sha256);
  });
  expect(expected.size).toBe(300);
  expect(filesUnder(server.storageDirectory).length).toBe(300);

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
  await mapConcurrent([...expected], 4, async ([id, sha256]) => {
    if ((await server.client.instanceFileSha256(id)).sha256 !== sha256) wrong.push(id);
  });
  expect(wrong).toEqual([]);
}, 600_000);
