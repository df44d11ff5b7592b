// Faults between the gateway and S3, during an ingest through a real Orthanc (AWS plugin, A1
// encryption on, Ceph RGW behind tooling/servers' fault proxy). For each fault: every create
// Orthanc acknowledged reads back byte-exact, failed creates leave no index entry, no call
// outlives its timeout, Orthanc keeps answering, and retries neither duplicate nor corrupt.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import {
  rgwClientConfig,
  startFaultProxy,
  startRadosgw,
  type Fault,
  type FaultProxy,
  type Radosgw,
} from '@orthanc-object-storage/servers';
import { generateCorpus, type CorpusFile } from './harness/dicom/corpus.js';
import { OrthancServer } from './harness/orthanc.js';
import { mapConcurrent, sleep } from './harness/parallel.js';
import { artifactDir, nodeExecutable } from './harness/repo.js';
import type { UploadResult } from './harness/rest.js';
import { uuidOfObject } from './scale-out.js';

const PLUGIN = path.join(artifactDir('aws'), 'libOrthancAwsS3Storage.so');
const BUCKET = 'faults';
const INSTANCES_PER_FAULT = 20;
const GATEWAY_CALL_TIMEOUT_S = 10;
// The S3 client: 3 s without an answer or a byte is a failed attempt; 4 attempts in all.
const REQUEST_TIMEOUT_S = 3;
const MAX_RETRIES = 3;

const FAULTS: { name: string; fault: Fault; every: number }[] = [
  { name: 'latency 400 ms', fault: { kind: 'latency', ms: 400 }, every: 1 },
  { name: 'reset mid-body', fault: { kind: 'reset-mid-body' }, every: 3 },
  { name: '500 InternalError', fault: { kind: 'status', status: 500 }, every: 2 },
  { name: '503 SlowDown', fault: { kind: 'status', status: 503 }, every: 2 },
  { name: 'stalled body', fault: { kind: 'stall' }, every: 3 },
  { name: 'refused connection', fault: { kind: 'refuse' }, every: 1 },
];

interface Row {
  fault: string;
  injected: number;
  acknowledged: number;
  failed: number;
  readBack: number;
  lost: number;
  longestCallMs: number;
  slowestSystemMs: number;
}

let workDir: string;
let rgw: Radosgw;
let proxy: FaultProxy;
let s3: S3Client;
let orthanc: OrthancServer;
let corpus: CorpusFile[];
const acked: { source: CorpusFile; upload: UploadResult }[] = [];
const rows: Row[] = [];

beforeAll(async () => {
  workDir = mkdtempSync(path.join(os.tmpdir(), 'oos-faults-aws-'));
  rgw = await startRadosgw({ workDir: path.join(workDir, 'radosgw') });
  s3 = new S3Client(rgwClientConfig(rgw));
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  proxy = await startFaultProxy(rgw.endpoint);
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
        Endpoint: proxy.url,
        VirtualAddressing: false,
        AccessKey: rgw.accessKey,
        SecretKey: rgw.secretKey,
        ConnectionTimeout: 2,
        RequestTimeout: REQUEST_TIMEOUT_S,
        MaxRetries: MAX_RETRIES,
        GatewayCallTimeout: GATEWAY_CALL_TIMEOUT_S,
        NodeExecutable: nodeExecutable(),
        StorageEncryption: { Enable: true, MasterKey: [1, keyPath] },
      },
    },
  });
  corpus = await generateCorpus(path.join(workDir, 'dicom'), {
    patients: Math.ceil((FAULTS.length * INSTANCES_PER_FAULT) / 20),
    studiesPerPatient: 2,
    seriesPerStudy: 2,
    instancesPerSeries: 5,
    largeInstanceBytes: 0,
    patientPrefix: `FAULTS-${Date.now()}`,
  });
}, 300_000);

afterAll(async () => {
  if (rows.length > 0) console.log(`fault table:\n${JSON.stringify(rows, null, 1)}`);
  await orthanc?.stop();
  await proxy?.stop();
  s3?.destroy();
  await rgw?.stop();
  rmSync(workDir, { recursive: true, force: true });
}, 120_000);

describe.each(FAULTS.map((entry, index) => [entry.name, entry, index] as const))(
  'fault: %s',
  (name, { fault, every }, index) => {
    test('during an ingest: acknowledged creates read back, failed ones leave nothing indexed, Orthanc answers', async () => {
      const batch = corpus.slice(index * INSTANCES_PER_FAULT, (index + 1) * INSTANCES_PER_FAULT);
      const countBefore = (await orthanc.client.statistics()).CountInstances;
      const faultedBefore = proxy.stats.faulted;
      await proxy.setFault(fault, every);
      let ingesting = true;
      let slowestSystemMs = 0;
      const watch = (async () => {
        while (ingesting) {
          const started = Date.now();
          expect(await orthanc.client.isUp()).toBe(true);
          slowestSystemMs = Math.max(slowestSystemMs, Date.now() - started);
          await sleep(250);
        }
      })();
      let longestCallMs = 0;
      const outcomes = await mapConcurrent(batch, 4, async (source) => {
        const started = Date.now();
        const upload = await orthanc.client.uploadFile(source.file).catch(() => undefined);
        longestCallMs = Math.max(longestCallMs, Date.now() - started);
        return { source, upload };
      });
      ingesting = false;
      await watch;
      await proxy.setFault({ kind: 'none' });

      const ok = outcomes.filter((o) => o.upload?.Status === 'Success') as typeof acked;
      acked.push(...ok);
      // Failed creates leave no index entry: the count moved by the acknowledged ones only.
      expect((await orthanc.client.statistics()).CountInstances).toBe(countBefore + ok.length);
      const mismatches = await mapConcurrent(ok, 4, async ({ source, upload }) => {
        const got = await orthanc.client.instanceFileSha256(upload.ID);
        return got.sha256 === source.sha256 ? undefined : source.label;
      });
      const lost = mismatches.filter((m) => m !== undefined);
      rows.push({
        fault: name,
        injected: proxy.stats.faulted - faultedBefore + (fault.kind === 'refuse' ? batch.length : 0),
        acknowledged: ok.length,
        failed: batch.length - ok.length,
        readBack: ok.length - lost.length,
        lost: lost.length,
        longestCallMs,
        slowestSystemMs,
      });
      expect(lost).toEqual([]);
      // A call lasts at most the S3 client's attempts, and never more than GatewayCallTimeout
      // without progress; allow Orthanc's own work on top.
      expect(longestCallMs).toBeLessThan((GATEWAY_CALL_TIMEOUT_S + 5) * 1000);
      expect(slowestSystemMs).toBeLessThan(5000);
      if (fault.kind !== 'refuse') expect(proxy.stats.faulted).toBeGreaterThan(faultedBefore);
    }, 300_000);
  },
);

test('after every fault: each object belongs to an acknowledged attachment and each attachment has its object', async () => {
  const names: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: token }));
    for (const object of page.Contents ?? []) names.push(object.Key!);
    token = page.NextContinuationToken;
  } while (token !== undefined);
  const stored = names.map((name) => uuidOfObject(name)!).sort();
  const indexed: string[] = [];
  await mapConcurrent(acked, 4, async ({ upload }) => {
    const attachments = await orthanc.client.getJson<string[]>(`/instances/${upload.ID}/attachments`);
    for (const attachment of attachments)
      indexed.push(await orthanc.client.attachmentUuid(upload.ID, attachment));
  });
  indexed.sort();
  const orphans = stored.filter((uuid) => !indexed.includes(uuid));
  console.log(
    `fault run: ${acked.length} acknowledged, ${indexed.length} attachments, ${stored.length} objects, ${orphans.length} orphans`,
  );
  expect(indexed.filter((uuid) => !stored.includes(uuid))).toEqual([]);
  expect(new Set(stored).size).toBe(stored.length);
  expect(orphans).toEqual([]);
}, 120_000);
