/**
 * Ingest benchmark (`pnpm bench` in packages/aws), against a local Ceph RGW: the plugin's storage
 * stack (core's naming and, optionally, A1 encryption over S3BucketClient) against raw SDK
 * PutObject calls at the same concurrency, for small objects and one large one. Prints JSON and
 * writes bench-results/ingest.json. Options: BENCH_OBJECTS, BENCH_OBJECT_KIB, BENCH_CONCURRENCY,
 * BENCH_LARGE_MIB.
 */
import { createCipheriv, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  ContentType,
  createObjectStorage,
  parseProviderSettings,
  silentLogger,
  type AwsS3Settings,
  type EncryptionSettings,
} from '@orthanc-object-storage/core';
import { startRadosgw, type Radosgw } from '@orthanc-object-storage/servers';
import { md5Base64 } from '../content-md5.js';
import { S3BucketClient } from '../s3-bucket-client.js';
import { s3ClientConfig } from '../s3-client-config.js';

const MiB = 1024 * 1024;
const RESULTS = resolve(dirname(fileURLToPath(import.meta.url)), '../../bench-results/ingest.json');
const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 400);
const OBJECT_BYTES = Number(process.env.BENCH_OBJECT_KIB ?? 512) * 1024;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const LARGE_BYTES = Number(process.env.BENCH_LARGE_MIB ?? 256) * MiB;

function randomData(size: number): Buffer {
  return createCipheriv('aes-256-ctr', randomBytes(32), Buffer.alloc(16)).update(Buffer.alloc(size));
}

/** Run `count` tasks, `concurrency` at a time; seconds taken. */
async function timed(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return (performance.now() - started) / 1000;
}

function rate(label: string, count: number, bytes: number, seconds: number) {
  return {
    label,
    objects: count,
    objectBytes: bytes,
    seconds: Number(seconds.toFixed(3)),
    objectsPerSecond: Number((count / seconds).toFixed(1)),
    mibPerSecond: Number(((count * bytes) / MiB / seconds).toFixed(1)),
  };
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'oos-aws-bench-'));
  let rgw: Radosgw | undefined;
  try {
    rgw = await startRadosgw();
    const settingsFor = (bucket: string, encryption?: EncryptionSettings): AwsS3Settings => {
      const { settings } = parseProviderSettings('aws', {
        AwsS3Storage: {
          BucketName: bucket,
          Region: rgw!.region,
          Endpoint: rgw!.endpoint,
          VirtualAddressing: false,
          AccessKey: rgw!.accessKey,
          SecretKey: rgw!.secretKey,
        },
      });
      return { ...settings!, encryption };
    };
    // The raw client has the plugin's HTTP settings (agents, timeouts, checksum mode).
    const raw = new S3Client(s3ClientConfig(settingsFor('bench-raw'), silentLogger));
    for (const bucket of ['bench-raw', 'bench-plugin', 'bench-encrypted']) {
      await raw.send(new CreateBucketCommand({ Bucket: bucket }));
    }
    const keyPath = join(workDir, 'master.key');
    writeFileSync(keyPath, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const encryption = {
      enabled: true,
      masterKey: { id: 1, path: keyPath },
      previousMasterKeys: [],
      maxConcurrentInputBytes: 1024 * MiB,
    };
    const plain = settingsFor('bench-plugin');
    const encrypted = settingsFor('bench-encrypted', encryption);
    const plugin = await createObjectStorage(plain, new S3BucketClient(plain, silentLogger), silentLogger);
    const pluginEncrypted = await createObjectStorage(
      encrypted,
      new S3BucketClient(encrypted, silentLogger),
      silentLogger,
    );

    const small = randomData(OBJECT_BYTES);
    const rawPut = (i: number) =>
      raw
        .send(
          new PutObjectCommand({
            Bucket: 'bench-raw',
            Key: `raw-${i}`,
            Body: small,
            ContentLength: small.length,
            ContentMD5: md5Base64(small), // the same integrity as the plugin, per call
          }),
        )
        .then(() => {});
    const stackPut = (storage: typeof plugin) => (_i: number) =>
      storage.create({ uuid: randomUUID(), type: ContentType.Dicom }, small.length, Readable.from([small]));

    // Warm-up: connections and code paths.
    await timed(CONCURRENCY, CONCURRENCY, rawPut);
    await timed(CONCURRENCY, CONCURRENCY, stackPut(plugin));

    const results = [];
    // Alternate the runs so the cluster's state affects both alike.
    for (const round of [1, 2, 3]) {
      results.push({
        round,
        ...rate('raw SDK PutObject', OBJECTS, OBJECT_BYTES, await timed(OBJECTS, CONCURRENCY, rawPut)),
      });
      results.push({
        round,
        ...rate('plugin stack', OBJECTS, OBJECT_BYTES, await timed(OBJECTS, CONCURRENCY, stackPut(plugin))),
      });
      results.push({
        round,
        ...rate(
          'plugin stack, A1 encryption',
          OBJECTS,
          OBJECT_BYTES,
          await timed(OBJECTS, CONCURRENCY, stackPut(pluginEncrypted)),
        ),
      });
    }

    const large = randomData(LARGE_BYTES);
    const largeRaw = await timed(1, 1, () =>
      new Upload({
        client: raw,
        params: { Bucket: 'bench-raw', Key: 'large', Body: Readable.from([large]) },
        queueSize: plain.transferPoolSize,
        partSize: plain.transferBufferBytes,
      })
        .done()
        .then(() => {}),
    );
    const largePlugin = await timed(1, 1, () =>
      plugin.create({ uuid: randomUUID(), type: ContentType.Dicom }, large.length, Readable.from([large])),
    );

    const report = {
      awsIngestBench: {
        server: 'Ceph RGW 16 (memstore OSD) on 127.0.0.1',
        cpus: cpus().length,
        concurrency: CONCURRENCY,
        small: results,
        large: [
          rate('raw lib-storage Upload (no Content-MD5 per part)', 1, LARGE_BYTES, largeRaw),
          rate('plugin stack (multipart, Content-MD5 per part)', 1, LARGE_BYTES, largePlugin),
        ],
        partBytes: plain.transferBufferBytes,
        transferPoolSize: plain.transferPoolSize,
      },
    };
    const json = JSON.stringify(report, null, 2);
    console.log(json);
    mkdirSync(dirname(RESULTS), { recursive: true });
    writeFileSync(RESULTS, `${json}\n`);
    await plugin.close();
    await pluginEncrypted.close();
    raw.destroy();
  } finally {
    await rgw?.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}

await main();
