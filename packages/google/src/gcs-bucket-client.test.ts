import { File } from '@google-cloud/storage';
import {
  ObjectNotFoundError,
  ObjectStorageError,
  RangeNotSatisfiableError,
} from '@orthanc-object-storage/core';
import { startGcsEmulator, type StartedGcsEmulator } from '@orthanc-object-storage/servers';
import { Readable } from 'node:stream';
import { createGcsBucketClient, type GcsBucketClient } from './gcs-bucket-client.js';
import { bodyOf, googleSettings, patterned, readAll } from './__tests__/fixtures.js';

const BUCKET = 'orthanc-test';

/** Record the arguments of a prototype method's calls (still calling it) until `restore()`. */
function recordCalls<T extends object>(
  target: T,
  method: keyof T & string,
): { args: unknown[][]; restore(): void } {
  const original = target[method] as (...args: unknown[]) => unknown;
  const args: unknown[][] = [];
  (target as Record<string, unknown>)[method] = function (this: unknown, ...callArgs: unknown[]) {
    args.push(callArgs);
    return original.apply(this, callArgs);
  };
  return { args, restore: () => void ((target as Record<string, unknown>)[method] = original) };
}
let emulator: StartedGcsEmulator;
let client: GcsBucketClient;

beforeAll(async () => {
  emulator = await startGcsEmulator({
    buckets: [BUCKET, 'orthanc-other'],
    forbiddenBuckets: ['orthanc-locked'],
  });
  // Small thresholds so the resumable, multi-chunk path runs on a few MiB.
  client = await createGcsBucketClient(googleSettings(), {
    apiEndpoint: emulator.apiEndpoint,
    singleRequestMaxBytes: 1024 * 1024,
    resumableChunkBytes: 512 * 1024,
  });
});

afterAll(async () => {
  await client?.close();
  await emulator?.stop();
});

describe('GcsBucketClient against the firebase-tools storage emulator', () => {
  it.each([0, 1, 1000, 1024 * 1024])(
    'round-trips %i bytes in a single request, size known first',
    async (size) => {
      const data = patterned(size, size + 7);
      await client.put(`small/${size}.dcm`, size, bodyOf(data));
      const read = await client.get(`small/${size}.dcm`);
      expect(read.size).toBe(size);
      expect((await readAll(read.body)).equals(data)).toBe(true);
    },
  );

  it('uses a resumable upload in several chunks above the threshold', async () => {
    const calls = recordCalls(File.prototype, 'createWriteStream');
    try {
      const data = patterned(3 * 1024 * 1024 + 12345, 3);
      await client.put('large/object.dcm', data.length, bodyOf(data));
      expect(calls.args).toContainEqual([
        expect.objectContaining({ resumable: true, chunkSize: 512 * 1024 }),
      ]);
      const read = await client.get('large/object.dcm');
      expect(read.size).toBe(data.length);
      expect((await readAll(read.body)).equals(data)).toBe(true);
    } finally {
      calls.restore();
    }
  });

  it('sends small objects in one non-resumable request', async () => {
    const calls = recordCalls(File.prototype, 'save');
    try {
      await client.put('small/once.dcm', 10, bodyOf(patterned(10)));
      expect(calls.args).toContainEqual([expect.any(Buffer), expect.objectContaining({ resumable: false })]);
    } finally {
      calls.restore();
    }
  });

  it('overwrites an object', async () => {
    await client.put('over.dcm', 5, bodyOf(Buffer.from('first')));
    await client.put('over.dcm', 6, bodyOf(Buffer.from('second')));
    expect((await readAll((await client.get('over.dcm')).body)).toString()).toBe('second');
  });

  describe('range reads (offset, length)', () => {
    const data = patterned(100_000, 11);
    beforeAll(async () => client.put('range.dcm', data.length, bodyOf(data)));

    it.each([
      ['start', 0, 10],
      ['middle', 4096, 8192],
      ['end', 99_990, 10],
      ['whole', 0, 100_000],
      ['one byte at the end', 99_999, 1],
    ])('%s', async (_label, offset, length) => {
      const bytes = await readAll(await client.getRange('range.dcm', offset, length));
      expect(bytes.equals(data.subarray(offset, offset + length))).toBe(true);
    });

    it('an empty range at the end is empty', async () => {
      expect((await readAll(await client.getRange('range.dcm', 100_000, 0))).length).toBe(0);
    });

    it('refuses a range that starts past the end', async () => {
      await expect(client.getRange('range.dcm', 100_000, 1)).rejects.toBeInstanceOf(RangeNotSatisfiableError);
      await expect(client.getRange('range.dcm', 100_001, 0)).rejects.toBeInstanceOf(RangeNotSatisfiableError);
    });

    it('refuses a range that crosses the end', async () => {
      await expect(client.getRange('range.dcm', 99_990, 20)).rejects.toBeInstanceOf(RangeNotSatisfiableError);
    });
  });

  it('reports a missing object as ObjectNotFoundError naming it', async () => {
    await expect(client.get('missing.dcm')).rejects.toThrow(ObjectNotFoundError);
    await expect(client.get('missing.dcm')).rejects.toThrow(/missing\.dcm/);
    await expect(client.getRange('missing.dcm', 0, 1)).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(client.getRange('missing.dcm', 0, 0)).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('removes idempotently', async () => {
    await client.put('gone.dcm', 3, bodyOf(Buffer.from('abc')));
    await client.delete('gone.dcm');
    await expect(client.get('gone.dcm')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await client.delete('gone.dcm');
    await client.delete('never-existed.dcm');
  });

  it.each([
    ['shorter', 10, 'x'.repeat(9)],
    ['longer', 10, 'x'.repeat(11)],
  ])('refuses a body %s than its declared size and stores nothing', async (_label, size, text) => {
    await expect(client.put(`bad-${_label}.dcm`, size, bodyOf(Buffer.from(text)))).rejects.toThrow(
      /announced 10/,
    );
    await expect(client.get(`bad-${_label}.dcm`)).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('refuses a large body shorter than declared without creating the object', async () => {
    const data = patterned(2 * 1024 * 1024);
    await expect(client.put('bad-large.dcm', data.length + 1, bodyOf(data))).rejects.toThrow(
      ObjectStorageError,
    );
    await expect(client.get('bad-large.dcm')).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('fails a put whose source stream fails', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('disk read failed'));
      },
    });
    await expect(client.put('fail.dcm', 10, failing)).rejects.toThrow(/disk read failed/);
  });

  it('runs 20 transfers in parallel', async () => {
    const items = Array.from({ length: 20 }, (_, i) => ({
      name: `par/${i}.dcm`,
      data: patterned(50_000 + i * 1000, i + 1),
    }));
    await Promise.all(items.map((item) => client.put(item.name, item.data.length, bodyOf(item.data))));
    const read = await Promise.all(items.map(async (item) => readAll((await client.get(item.name)).body)));
    read.forEach((bytes, i) => expect(bytes.equals(items[i]!.data)).toBe(true));
  });

  it('names the bucket when it does not exist, and does not call it a missing object', async () => {
    const other = await createGcsBucketClient(googleSettings({ bucketName: 'no-such-bucket' }), {
      apiEndpoint: emulator.apiEndpoint,
    });
    const error = await other.get('a.dcm').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ObjectStorageError);
    expect(error).not.toBeInstanceOf(ObjectNotFoundError);
    expect((error as Error).message).toMatch(/bucket no-such-bucket does not exist/);
    await expect(other.checkBucket({ info() {}, warn() {}, error() {} })).rejects.toThrow(/no-such-bucket/);
  });

  it('names the bucket on a permission failure (403)', async () => {
    const locked = await createGcsBucketClient(googleSettings({ bucketName: 'orthanc-locked' }), {
      apiEndpoint: emulator.apiEndpoint,
    });
    for (const attempt of [
      () => locked.get('a.dcm'),
      () => locked.put('a.dcm', 1, bodyOf(Buffer.from('a'))),
      () => locked.delete('a.dcm'),
      () => locked.getRange('a.dcm', 0, 1),
    ]) {
      const error = (await attempt().catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(ObjectStorageError);
      expect(error.message).toMatch(/permission denied on bucket orthanc-locked/);
    }
    const warnings: string[] = [];
    await locked.checkBucket({ info() {}, warn: (m) => warnings.push(m), error() {} });
    expect(warnings.join()).toMatch(/orthanc-locked/);
  });

  it('fails during an outage (503 after retries) and works again after it', async () => {
    await client.put('outage.dcm', 2, bodyOf(Buffer.from('ok')));
    await emulator.setBucketAvailable(BUCKET, false);
    try {
      await expect(client.get('outage.dcm')).rejects.toThrow(
        /read outage\.dcm in bucket orthanc-test failed \(HTTP 503\)/,
      );
    } finally {
      await emulator.setBucketAvailable(BUCKET, true);
    }
    expect((await readAll((await client.get('outage.dcm')).body)).toString()).toBe('ok');
  }, 60_000);

  it('describes itself without secrets', () => {
    expect(client.description).toBe(`gs://${BUCKET} (endpoint ${emulator.apiEndpoint})`);
  });
});
