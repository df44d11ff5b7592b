// Upload memory is bounded across concurrent calls: 16 creates at once through the native shim
// (fake Orthanc host, 16 threads) into the AWS plugin on Ceph RGW. The gateway's peak RSS stays
// bounded (see RSS_LIMIT). CI uses 32 MiB objects (512 MiB in all); OOS_SHIM_MEMORY_MIB=256 runs the full
// case (4 GiB, which the in-memory OSD then holds in RAM).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { rgwClientConfig, startRadosgw, type Radosgw } from '@orthanc-object-storage/servers';
import { processMemory } from './harness/proc.js';
import { artifactDir, nodeExecutable } from './harness/repo.js';
import { ShimHost } from './harness/shim-host.js';

const PLUGIN = path.join(artifactDir('aws'), 'libOrthancAwsS3Storage.so');
const MiB = 1024 * 1024;
const OBJECT_BYTES = Number(process.env.OOS_SHIM_MEMORY_MIB ?? 32) * MiB;
const CONCURRENT = 16;
// The target is 256 MiB; measured 244 to 284 MiB on 2 loaded cores (README), so the
// guard is 320 MiB: without the shared budget (lib-storage per upload) the same run peaked at 629 MiB.
const RSS_LIMIT = Number(process.env.OOS_SHIM_MEMORY_LIMIT_MIB ?? 320) * MiB;

let workDir: string;
let rgw: Radosgw;
let s3: S3Client;
let host: ShimHost | undefined;

beforeAll(async () => {
  workDir = mkdtempSync(path.join(os.tmpdir(), 'oos-shim-memory-'));
  rgw = await startRadosgw({
    workDir: path.join(workDir, 'radosgw'),
    memoryBytes: Math.max(3 * 1024 * MiB, CONCURRENT * OBJECT_BYTES * 1.25),
  });
  s3 = new S3Client(rgwClientConfig(rgw));
}, 180_000);

afterAll(async () => {
  if (process.env.OOS_DEBUG) console.log(host?.log.join('\n'));
  await host?.stop();
  s3?.destroy();
  await rgw?.stop();
  rmSync(workDir, { recursive: true, force: true });
}, 120_000);

it(`${CONCURRENT} concurrent creates of ${OBJECT_BYTES / MiB} MiB keep the gateway within ${RSS_LIMIT / MiB} MiB`, async () => {
  const bucket = 'shim-memory';
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  host = await ShimHost.start({
    plugin: PLUGIN,
    workDir,
    threads: CONCURRENT,
    configuration: {
      AwsS3Storage: {
        BucketName: bucket,
        Region: rgw.region,
        Endpoint: rgw.endpoint,
        VirtualAddressing: false,
        AccessKey: rgw.accessKey,
        SecretKey: rgw.secretKey,
        NodeExecutable: nodeExecutable(),
        // Pinned (the default follows the machine's CPUs): each worker has its own S3 client and
        // upload buffers, so the bound scales with the workers (README, GatewayWorkers); the 256 MiB
        // target is the one gateway thread's.
        GatewayWorkers: 1,
      },
    },
  });
  expect(host.ready).toBe(true);
  const gateway = host.gatewayPids()[0]!;
  const idle = processMemory(gateway).rss;
  const started = Date.now();
  const uuids = Array.from({ length: CONCURRENT }, () => randomUUID());
  const created = await Promise.all(uuids.map((uuid) => host!.create(uuid, OBJECT_BYTES, 42)));
  expect(created.map((result) => result.rc)).toEqual(uuids.map(() => 0));
  const peak = processMemory(gateway).peak;
  // The figures for the report, whatever the outcome.
  console.log(`gateway RSS before: ${(idle / MiB).toFixed(1)} MiB; creates took ${Date.now() - started} ms`);
  console.log(
    `gateway peak RSS after ${CONCURRENT} x ${OBJECT_BYTES / MiB} MiB creates: ${(peak / MiB).toFixed(1)} MiB`,
  );
  expect(peak).toBeLessThanOrEqual(RSS_LIMIT);

  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  expect(listed.Contents?.map((object) => object.Size)).toEqual(uuids.map(() => OBJECT_BYTES));
  for (const uuid of uuids.slice(0, 2)) {
    expect(await host.readWhole(uuid, OBJECT_BYTES, 42)).toMatchObject({ rc: 0, match: true });
  }
  for (const uuid of uuids) expect((await host.remove(uuid)).rc).toBe(0);
  expect((await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).KeyCount).toBe(0);
}, 900_000);
