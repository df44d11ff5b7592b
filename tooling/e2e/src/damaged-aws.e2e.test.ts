// Damaged objects are never served: through a real Orthanc (AWS plugin on Ceph RGW, encryption
// on, MaximumStorageCacheSize 0 so every read reaches the bucket), an object altered in the bucket
// makes GET /instances/{id}/file fail, with no DICOM bytes in the answer and a log line naming the
// object. C1 (the default): a flipped byte, a truncated object and another attachment's object
// (same master key) all fail, whole reads and range reads alike (C1 registers range reads:
// /frames/0/raw and /tags read parts of the file). A1: the replacement is served, its documented
// limit. Each damaged instance is read for the first time once damaged (Orthanc caches parsed files).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { AWS_PLUGIN, startEncryptedRgw, type EncryptedRgw } from './harness/encrypted-rgw.js';
import { generateCorpus, type CorpusFile } from './harness/dicom/corpus.js';
import { OrthancServer } from './harness/orthanc.js';
import type { UploadResult } from './harness/rest.js';

const BUCKET = 'damaged';
const C1_HEADER_BYTES = 105;
const C1_TAG_BYTES = 16;
const DICM = Buffer.from('DICM');

interface Stored {
  readonly source: CorpusFile;
  readonly upload: UploadResult;
  readonly object: string;
  readonly uuid: string;
  readonly original: Buffer;
}

let fixture: EncryptedRgw;
let s3: S3Client;

async function getObject(name: string): Promise<Buffer> {
  const output = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: name }));
  return Buffer.from(await output.Body!.transformToByteArray());
}

const putObject = (name: string, body: Buffer) =>
  s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: name, Body: body }));

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function flipped(data: Buffer, at: number): Buffer {
  const copy = Buffer.from(data);
  copy[at]! ^= 0x01;
  return copy;
}

beforeAll(async () => {
  fixture = await startEncryptedRgw(BUCKET);
  s3 = fixture.s3;
}, 300_000);

afterAll(async () => {
  await fixture?.stop();
}, 120_000);

/** An Orthanc on the shared bucket with `format`, and `count` instances stored through it (largest first). */
function orthancWith(format: 'C1' | 'A1', count: number) {
  const state: { orthanc?: OrthancServer; stored: Stored[] } = { stored: [] };
  beforeAll(async () => {
    const workDir = path.join(fixture.workDir, `orthanc-${format}`);
    state.orthanc = await OrthancServer.start({
      workDir,
      plugins: [AWS_PLUGIN],
      verbose: true, // the gateway's per-call lines show which reads were ranges
      configuration: {
        MaximumStorageCacheSize: 0,
        AwsS3Storage: fixture.section({}, { WriteFormat: format }),
      },
    });
    const corpus = await generateCorpus(path.join(workDir, 'dicom'), {
      patients: 1,
      studiesPerPatient: 1,
      seriesPerStudy: 1,
      instancesPerSeries: 18,
      largeInstanceBytes: 0,
      patientPrefix: `DAMAGED-${format}-${Date.now()}`,
    });
    // The largest span several 64 KiB C1 chunks: a range read then touches only some of them.
    const largest = [...corpus].sort((a, b) => b.size - a.size).slice(0, count);
    for (const source of largest) {
      const upload = await state.orthanc.client.uploadFile(source.file);
      const uuid = await state.orthanc.client.attachmentUuid(upload.ID);
      const object = `${uuid}.dcm.enc`;
      state.stored.push({ source, upload, object, uuid, original: await getObject(object) });
    }
  }, 300_000);
  afterAll(async () => {
    await state.orthanc?.stop();
  }, 120_000);
  return state;
}

/**
 * GET `uri` fails: not 200, no DICOM bytes nor any of the instance's bytes in the answer, and a
 * log line names the object.
 */
async function expectRefused(orthanc: OrthancServer, entry: Stored, uri: string): Promise<void> {
  const logBefore = orthanc.readLog().length;
  const answer = await orthanc.client.getRaw(uri);
  expect({ uri, status: answer.status }).not.toEqual({ uri, status: 200 });
  expect(answer.body.includes(DICM)).toBe(false);
  const source = readFileSync(entry.source.file);
  expect(answer.body.includes(source.subarray(source.length - 32))).toBe(false);
  // The log reaches its file through a pipe, maybe after the answer: wait for the line.
  const deadline = Date.now() + 5_000;
  while (!orthanc.readLog().slice(logBefore).includes(entry.uuid) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(orthanc.readLog().slice(logBefore)).toContain(entry.uuid);
}

/** Put `damaged` in place of `entry`'s object, run `check`, put the original back. */
async function withDamage(entry: Stored, damaged: Buffer, check: () => Promise<void>): Promise<void> {
  await putObject(entry.object, damaged);
  try {
    await check();
  } finally {
    await putObject(entry.object, entry.original);
  }
}

describe('C1 (the default): every damage is refused, whole and range reads', () => {
  const c1 = orthancWith('C1', 8);
  const file = (entry: Stored) => `/instances/${entry.upload.ID}/file`;
  const frame = (entry: Stored) => `/instances/${entry.upload.ID}/frames/0/raw`;
  const tags = (entry: Stored) => `/instances/${entry.upload.ID}/tags`;

  test('objects are C1; those read in ranges are at least two chunks long', () => {
    for (const entry of c1.stored) expect(entry.original.subarray(0, 2).toString('latin1')).toBe('C1');
    for (const entry of c1.stored.slice(0, 4)) {
      expect(entry.original.length).toBeGreaterThan(C1_HEADER_BYTES + 65_536 + C1_TAG_BYTES);
    }
  });

  test('one flipped byte: the whole read fails and names the object', async () => {
    const entry = c1.stored[4]!;
    const damaged = flipped(entry.original, Math.floor(entry.original.length / 2));
    await withDamage(entry, damaged, () => expectRefused(c1.orthanc!, entry, file(entry)));
    expect(sha256(await c1.orthanc!.client.getBytes(file(entry)))).toBe(entry.source.sha256);
  });

  test('a truncated object: the whole read fails and names the object', async () => {
    const entry = c1.stored[5]!;
    const damaged = entry.original.subarray(0, entry.original.length - 17);
    await withDamage(entry, damaged, () => expectRefused(c1.orthanc!, entry, file(entry)));
    expect(sha256(await c1.orthanc!.client.getBytes(file(entry)))).toBe(entry.source.sha256);
  });

  test('another attachment’s object (same master key): the whole read fails and names the object', async () => {
    const [target, other] = [c1.stored[6]!, c1.stored[7]!];
    await withDamage(target, other.original, () => expectRefused(c1.orthanc!, target, file(target)));
    expect(sha256(await c1.orthanc!.client.getBytes(file(target)))).toBe(target.source.sha256);
  });

  test('range reads: a flipped byte in the pixel data fails /frames/0/raw, one in the first chunk fails /tags', async () => {
    const entry = c1.stored[0]!;
    const logBefore = c1.orthanc!.readLog().length;
    // The last chunk holds the end of the pixel data; the first one the tags.
    const lastChunkByte = entry.original.length - C1_TAG_BYTES - 40;
    await withDamage(entry, flipped(entry.original, lastChunkByte), () =>
      expectRefused(c1.orthanc!, entry, frame(entry)),
    );
    await withDamage(entry, flipped(entry.original, C1_HEADER_BYTES + 200), () =>
      expectRefused(c1.orthanc!, entry, tags(entry)),
    );
    // Orthanc read parts of the object, not the whole of it.
    await c1.orthanc!.waitForLogLine(['read range', entry.uuid]);
    expect(c1.orthanc!.readLog().slice(logBefore)).toMatch(new RegExp(`read range \\[[^\\n]*${entry.uuid}`));
  });

  test('range reads: a truncated object fails /frames/0/raw', async () => {
    const entry = c1.stored[1]!;
    const damaged = entry.original.subarray(0, entry.original.length - 17);
    await withDamage(entry, damaged, () => expectRefused(c1.orthanc!, entry, frame(entry)));
  });

  test('range reads: another attachment’s object fails /tags and /frames/0/raw', async () => {
    const [target, other] = [c1.stored[2]!, c1.stored[3]!];
    await withDamage(target, other.original, async () => {
      await expectRefused(c1.orthanc!, target, tags(target));
      await expectRefused(c1.orthanc!, target, frame(target));
    });
  });
});

// KNOWN LIMIT OF A1: nothing in an A1 object names its attachment, so another attachment's object
// (same master key) decrypts and verifies, and Orthanc serves the other instance's file under this
// instance's id. One more reason to re-encrypt A1 objects to C1 (see README).
describe('A1: damage is refused, but a replacement is its documented limit', () => {
  const a1 = orthancWith('A1', 4);
  const file = (entry: Stored) => `/instances/${entry.upload.ID}/file`;

  test('a flipped byte and a truncated object fail and name the object', async () => {
    const [first, second] = [a1.stored[0]!, a1.stored[1]!];
    await withDamage(first, flipped(first.original, Math.floor(first.original.length / 2)), () =>
      expectRefused(a1.orthanc!, first, file(first)),
    );
    await withDamage(second, second.original.subarray(0, second.original.length - 17), () =>
      expectRefused(a1.orthanc!, second, file(second)),
    );
  });

  test('another attachment’s object copied over this one is served as this instance', async () => {
    const [target, other] = [a1.stored[2]!, a1.stored[3]!];
    await withDamage(target, other.original, async () => {
      const answer = await a1.orthanc!.client.getRaw(file(target));
      expect(answer.status).toBe(200);
      expect(sha256(answer.body)).toBe(other.source.sha256); // the other patient's file
    });
    expect(sha256(await a1.orthanc!.client.getBytes(file(target)))).toBe(target.source.sha256);
  });
});
