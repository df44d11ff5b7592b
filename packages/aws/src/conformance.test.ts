// Core's storage stack (naming, A1 encryption off and on, legacy fallbacks) over the S3 client,
// against a real Ceph RGW: the shared conformance suite, bounded memory, and the naming options.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  describeBucketListConformance,
  describeStorageConformance,
  expectBoundedMemoryRoundTrip,
} from '@orthanc-object-storage/conformance';
import {
  ContentType,
  createObjectStorage,
  silentLogger,
  type ObjectStorage,
} from '@orthanc-object-storage/core';
import { startRadosgw, type Radosgw } from '@orthanc-object-storage/servers';
import { createS3BucketClient } from './s3-bucket-client.js';
import { createBuckets, rawClient, readAll, rgwSettings } from './__tests__/rgw-fixtures.js';

const MiB = 1024 * 1024;
let rgw: Radosgw;
let raw: S3Client;

beforeAll(async () => {
  rgw = await startRadosgw();
  raw = rawClient(rgw);
  await createBuckets(rgw, 'conformance-plain', 'conformance-encrypted', 'memory', 'naming');
});

afterAll(async () => {
  raw?.destroy();
  await rgw?.stop();
});

describeStorageConformance('AWS S3 (Ceph RGW)', async ({ encryption }) => {
  const bucket = encryption === undefined ? 'conformance-plain' : 'conformance-encrypted';
  const settings = { ...rgwSettings(rgw, bucket, { RootPath: 'orthanc/files' }), encryption };
  return createObjectStorage(
    settings,
    await createS3BucketClient(settings, { log: silentLogger }),
    silentLogger,
  );
});

describeBucketListConformance(
  'AWS S3 (Ceph RGW)',
  async () => createS3BucketClient(rgwSettings(rgw, 'conformance-plain'), { log: silentLogger }),
  { listsMd5: true },
);

describe('AWS S3 (Ceph RGW): memory', () => {
  const factoryModule = fileURLToPath(new URL('./__tests__/memory-storage-factory.mjs', import.meta.url));
  const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));

  it('round-trips a 256 MiB object (multipart) with bounded memory (peak RSS of the process)', async () => {
    if (!existsSync(built)) throw new Error(`${built} is missing: run "pnpm build" in packages/aws first`);
    const result = await expectBoundedMemoryRoundTrip({
      factoryModule,
      factoryOptions: { ...rgwConnection(), bucket: 'memory' },
      sizeBytes: 256 * MiB,
      maxRssBytes: 320 * MiB,
    });
    console.log(
      JSON.stringify({
        awsBoundedMemoryRoundTrip: {
          sizeBytes: 256 * MiB,
          peakRssMiB: Math.round(result.peakRssBytes / MiB),
          createSeconds: result.createSeconds,
          readSeconds: result.readSeconds,
        },
      }),
    );
  });
});

function rgwConnection() {
  return { endpoint: rgw.endpoint, region: rgw.region, accessKey: rgw.accessKey, secretKey: rgw.secretKey };
}

describe('AWS S3 (Ceph RGW): RootPath, StorageStructure, EnableLegacyUnknownFiles', () => {
  const uuid = '0f2c8a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b';

  async function storageWith(extra: Record<string, unknown>): Promise<ObjectStorage> {
    const settings = rgwSettings(rgw, 'naming', extra);
    return createObjectStorage(
      settings,
      await createS3BucketClient(settings, { log: silentLogger }),
      silentLogger,
    );
  }

  async function namesUnder(prefix: string): Promise<string[]> {
    const listed = await raw.send(new ListObjectsV2Command({ Bucket: 'naming', Prefix: prefix }));
    return (listed.Contents ?? []).map((object) => object.Key ?? '').sort();
  }

  it.each([
    ['flat', 'root-flat', [`root-flat/${uuid}.dcm`, `root-flat/${uuid}.dcm.head`, `root-flat/${uuid}.json`]],
    ['legacy', 'root/legacy', [`root/legacy/0f/2c/${uuid}`]],
  ])(
    'StorageStructure %s under RootPath %s names objects as the C++ plugins do',
    async (structure, root, expected) => {
      const storage = await storageWith({ RootPath: root, StorageStructure: structure });
      const types = [ContentType.Dicom, ContentType.DicomUntilPixelData, ContentType.DicomAsJson];
      // With `legacy`, every content type has the same name: write one.
      for (const type of structure === 'legacy' ? [ContentType.Dicom] : types) {
        const data = Buffer.from(`type ${type}`);
        await storage.create({ uuid, type }, data.length, Readable.from([data]));
      }
      expect(await namesUnder(`${root}/`)).toEqual(expected);
      const { body } = await storage.read({ uuid, type: ContentType.Dicom });
      expect((await readAll(body)).toString()).toBe(`type ${ContentType.Dicom}`);
      await storage.close();
    },
  );

  it('EnableLegacyUnknownFiles reads a .unk object put directly into the bucket as DicomUntilPixelData', async () => {
    const header = Buffer.from('legacy dicom header bytes');
    await raw.send(new PutObjectCommand({ Bucket: 'naming', Key: `unk/${uuid}.unk`, Body: header }));
    const key = { uuid, type: ContentType.DicomUntilPixelData };

    const enabled = await storageWith({ RootPath: 'unk', EnableLegacyUnknownFiles: true });
    const { size, body } = await enabled.read(key);
    expect(size).toBe(header.length);
    expect((await readAll(body)).equals(header)).toBe(true);

    const disabled = await storageWith({ RootPath: 'unk' });
    await expect(disabled.read(key)).rejects.toMatchObject({ name: 'ObjectNotFoundError' });

    await enabled.remove(key);
    expect(await namesUnder('unk/')).toEqual([]);
    await enabled.close();
    await disabled.close();
  });
});
