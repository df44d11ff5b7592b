// The S3 BucketClient against a real Ceph RGW (Debian's radosgw on loopback).
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { patternStream, sha256OfStream } from '@orthanc-object-storage/conformance';
import { startRadosgw, type Radosgw } from '@orthanc-object-storage/servers';
import { S3BucketClient } from './s3-bucket-client.js';
import {
  createBuckets,
  patterned,
  rawClient,
  readAll,
  rgwSettings,
  selfSignedCertificate,
} from './__tests__/rgw-fixtures.js';

const MiB = 1024 * 1024;
const BUCKET = 'client-tests';
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

let rgw: Radosgw;
let raw: S3Client;
let certDir: string;
let certPath: string;
const clients: S3BucketClient[] = [];

function open(extra: Record<string, unknown> = {}, bucket = BUCKET): S3BucketClient {
  const client = new S3BucketClient(rgwSettings(rgw, bucket, extra), quiet);
  clients.push(client);
  return client;
}

const md5 = (data: Uint8Array | string) => createHash('md5').update(data).digest('base64');

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

async function exists(name: string): Promise<boolean> {
  const listed = await raw.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: name }));
  return (listed.Contents ?? []).some((object) => object.Key === name);
}

async function storedBytes(name: string): Promise<Buffer> {
  const output = await raw.send(new GetObjectCommand({ Bucket: BUCKET, Key: name }));
  return readAll(output.Body as Readable);
}

/** Requests as they leave our middlewares (command, headers, body), recorded before signing. */
function recordRequests(client: S3BucketClient) {
  const seen: { command: string; headers: Record<string, string>; bodyMd5: string | undefined }[] = [];
  let inFlight = 0;
  const peak = { parts: 0 };
  client.client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers: Record<string, string>; body: unknown };
      const bodyMd5 = request.body instanceof Uint8Array ? md5(request.body) : undefined;
      seen.push({ command: context.commandName ?? '', headers: { ...request.headers }, bodyMd5 });
      const isPart = context.commandName === 'UploadPartCommand';
      if (isPart) peak.parts = Math.max(peak.parts, ++inFlight);
      try {
        return await next(args);
      } finally {
        if (isPart) inFlight--;
      }
    },
    { step: 'build', priority: 'low' },
  );
  return { seen, peak };
}

/** Flip one byte of matching request bodies after the Content-MD5 was computed. */
function corruptBodies(client: S3BucketClient, command: string, partNumber?: string): void {
  client.client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { body: unknown; query: Record<string, string> };
      const part = request.query?.partNumber;
      if (context.commandName === command && (partNumber === undefined || part === partNumber)) {
        const body = Buffer.from(request.body as Uint8Array);
        body[body.length >> 1]! ^= 0xff;
        request.body = body;
      }
      return next(args);
    },
    { step: 'build', priority: 'low' },
  );
}

beforeAll(async () => {
  certDir = await mkdtemp(path.join(tmpdir(), 'oos-aws-tls-'));
  const tls = await selfSignedCertificate(certDir);
  certPath = tls.certPath;
  rgw = await startRadosgw({ tls });
  raw = rawClient(rgw);
  await createBuckets(rgw, BUCKET);
});

afterAll(async () => {
  for (const client of clients) await client.close();
  raw?.destroy();
  await rgw?.stop();
  if (certDir) await rm(certDir, { recursive: true, force: true });
});

describe('writes and reads', () => {
  it.each(['WHEN_REQUIRED', 'WHEN_SUPPORTED'])(
    'stores exactly the bytes written, with no aws-chunked framing (RequestChecksumCalculation %s)',
    async (mode) => {
      const client = open({ RequestChecksumCalculation: mode });
      for (const [size, transfer] of [
        [0, false],
        [0, true],
        [1000, false],
        [3 * MiB, true],
        [11 * MiB, false],
      ] as const) {
        const name = `exact/${mode}/${size}-${transfer}`;
        const data = patterned(size, size + 7);
        const writer = transfer
          ? open({ RequestChecksumCalculation: mode, UseTransferManager: true })
          : client;
        await writer.put(name, size, Readable.from([data]));
        const stored = await storedBytes(name);
        expect(stored.length).toBe(size);
        expect(stored.equals(data)).toBe(true);
        const { size: announced, body } = await client.get(name);
        expect(announced).toBe(size);
        expect((await readAll(body)).equals(data)).toBe(true);
      }
    },
  );

  it('sends a single-part put with the Content-MD5 of the body', async () => {
    const client = open();
    const { seen } = recordRequests(client);
    const data = patterned(4096, 3);
    await client.put('md5/single', data.length, Readable.from([data]));
    const put = seen.find((request) => request.command === 'PutObjectCommand');
    expect(put?.headers['content-md5']).toBe(md5(data));
    expect(seen.some((request) => request.command === 'UploadPartCommand')).toBe(false);
  });

  it('reads ranges with an HTTP Range header', async () => {
    const client = open();
    const data = patterned(100_000, 5);
    await client.put('range/object', data.length, Readable.from([data]));
    const { seen } = recordRequests(client);
    for (const [offset, length] of [
      [0, 1],
      [99_999, 1],
      [1234, 50_000],
      [0, 100_000],
    ] as const) {
      const range = await readAll(await client.getRange('range/object', offset, length));
      expect(range.equals(data.subarray(offset, offset + length))).toBe(true);
    }
    expect(seen.map((request) => request.headers.range)).toEqual([
      'bytes=0-0',
      'bytes=99999-99999',
      'bytes=1234-51233',
      'bytes=0-99999',
    ]);
  });

  it('refuses ranges past the end as RangeNotSatisfiableError', async () => {
    const client = open();
    await client.put('range/short', 10, Readable.from([Buffer.alloc(10, 1)]));
    expect((await caught(client.getRange('range/short', 10, 1))).name).toBe('RangeNotSatisfiableError');
    expect((await caught(client.getRange('range/short', 5, 6))).name).toBe('RangeNotSatisfiableError');
  });

  it('reports a missing object as ObjectNotFoundError, and removes missing objects without error', async () => {
    const client = open();
    const read = await caught(client.get('missing/object'));
    expect(read.name).toBe('ObjectNotFoundError');
    expect(read.message).toContain('missing/object');
    expect((await caught(client.getRange('missing/object', 0, 1))).name).toBe('ObjectNotFoundError');
    await expect(client.delete('missing/object')).resolves.toBeUndefined();
    await client.put('missing/then-removed', 3, Readable.from([Buffer.from('abc')]));
    await client.delete('missing/then-removed');
    await client.delete('missing/then-removed');
    expect(await exists('missing/then-removed')).toBe(false);
  });

  it('refuses a body longer or shorter than announced and stores nothing', async () => {
    const client = open();
    const single = await caught(client.put('size/single', 10, Readable.from([Buffer.alloc(11)])));
    expect(single.message).toMatch(/more than the announced 10 bytes/);
    const short = await caught(client.put('size/multi', 12 * MiB, Readable.from([Buffer.alloc(7 * MiB)])));
    expect(short.message).toMatch(/instead of the announced/);
    expect(await exists('size/single')).toBe(false);
    expect(await exists('size/multi')).toBe(false);
    const uploads = await raw.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'size/' }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });
});

describe('integrity', () => {
  it('the server rejects a wrong Content-MD5 (BadDigest)', async () => {
    const error = await caught(
      raw.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: 'integrity/wrong-md5',
          Body: Buffer.from('hello'),
          ContentMD5: md5('hellO'),
        }),
      ),
    );
    expect(error.name).toBe('BadDigest');
    expect((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode).toBe(400);
    expect(await exists('integrity/wrong-md5')).toBe(false);
  });

  it('a single-part body altered after hashing is rejected and not stored', async () => {
    const client = open({ MaxRetries: 0 });
    corruptBodies(client, 'PutObjectCommand');
    const error = await caught(client.put('integrity/single', 5000, Readable.from([patterned(5000, 9)])));
    expect(error.name).toBe('IntegrityError');
    expect(error.message).toContain('integrity/single');
    expect(await exists('integrity/single')).toBe(false);
  });

  it('a multipart part altered after hashing is rejected, the upload aborted, nothing stored', async () => {
    const client = open({ MaxRetries: 0 });
    corruptBodies(client, 'UploadPartCommand', '2');
    const error = await caught(
      client.put('integrity/multi', 12 * MiB, Readable.from([patterned(12 * MiB, 4)])),
    );
    expect(error.name).toBe('IntegrityError');
    expect(await exists('integrity/multi')).toBe(false);
    const uploads = await raw.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'integrity/' }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });
});

describe('multipart', () => {
  it('streams a 100 MiB object in TransferBufferSize parts, each with its Content-MD5, TransferPoolSize at a time', async () => {
    const size = 100 * MiB;
    const client = open({ TransferPoolSize: 3, TransferBufferSize: 8 });
    const { seen, peak } = recordRequests(client);
    await client.put('multipart/100MiB', size, patternStream(size, 77));
    const parts = seen.filter((request) => request.command === 'UploadPartCommand');
    expect(parts).toHaveLength(Math.ceil(size / (8 * MiB)));
    for (const part of parts) {
      expect(part.headers['content-md5']).toBe(part.bodyMd5);
    }
    expect(peak.parts).toBeGreaterThan(1);
    expect(peak.parts).toBeLessThanOrEqual(3);
    const head = await raw.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'multipart/100MiB' }));
    expect(head.ETag).toMatch(/-13"$/);
    expect(head.ContentLength).toBe(size);
    const { size: announced, body } = await client.get('multipart/100MiB');
    expect(announced).toBe(size);
    expect(await sha256OfStream(body)).toBe(await sha256OfStream(patternStream(size, 77)));
    await client.delete('multipart/100MiB');
  });

  it('uses multipart for any size above the part size, and for small ones only with UseTransferManager', async () => {
    const plain = open();
    const small = recordRequests(plain);
    await plain.put('multipart/small', 1000, Readable.from([patterned(1000)]));
    expect(small.seen.map((request) => request.command)).toEqual(['PutObjectCommand']);

    const above = recordRequests(plain);
    await plain.put('multipart/above', 5 * MiB + 1, Readable.from([patterned(5 * MiB + 1)]));
    expect(above.seen.filter((request) => request.command === 'UploadPartCommand')).toHaveLength(2);

    const managed = open({ UseTransferManager: true });
    const large = recordRequests(managed);
    await managed.put('multipart/managed', 2 * MiB, Readable.from([patterned(2 * MiB)]));
    // A one-part object is a plain put, still with its Content-MD5.
    const put = large.seen.find((request) => request.command === 'PutObjectCommand');
    expect(put?.headers['content-md5']).toBe(md5(patterned(2 * MiB)));
  });
});

describe('StorageClass and Tags', () => {
  it.each([
    ['single-part', 1000],
    ['multipart', 11 * MiB],
  ])('applies them on write (%s), visible with HeadObject and GetObjectTagging', async (label, size) => {
    const client = open({ StorageClass: 'STANDARD_IA', Tags: { project: 'orthanc', 'with space': 'a&b=c' } });
    const name = `classes/${label}`;
    await client.put(name, size, Readable.from([patterned(size)]));
    const head = await raw.send(new HeadObjectCommand({ Bucket: BUCKET, Key: name }));
    expect(head.StorageClass).toBe('STANDARD_IA');
    const tagging = await raw.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: name }));
    const tags = Object.fromEntries((tagging.TagSet ?? []).map((tag) => [tag.Key, tag.Value]));
    expect(tags).toEqual({ project: 'orthanc', 'with space': 'a&b=c' });
  });

  it('writes without a storage class or tags by default', async () => {
    await open().put('classes/default', 10, Readable.from([Buffer.alloc(10)]));
    const head = await raw.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'classes/default' }));
    expect(head.StorageClass ?? 'STANDARD').toBe('STANDARD');
    const tagging = await raw.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: 'classes/default' }));
    expect(tagging.TagSet ?? []).toEqual([]);
  });
});

describe('credentials and errors', () => {
  it('a wrong secret gives an error naming bucket and endpoint, never the secret', async () => {
    const secret = 'WrongSecretValue0123456789abcdefghijklmn';
    const client = open({ SecretKey: secret });
    for (const attempt of [
      client.put('auth/x', 3, Readable.from([Buffer.from('abc')])),
      client.get('auth/x'),
      client.delete('auth/x'),
    ]) {
      const error = await caught(attempt);
      expect(error.message).toContain('SignatureDoesNotMatch');
      expect(error.message).toContain(`s3://${BUCKET}`);
      expect(error.message).toContain(rgw.endpoint);
      expect(error.message).not.toContain(secret);
      expect(error.message).not.toContain(rgw.secretKey);
    }
    const startup = await caught(client.checkAccess(quiet));
    expect(startup.name).toBe('ConfigurationError');
    expect(startup.message).toContain(rgw.endpoint);
    expect(startup.message).not.toContain(secret);
  });

  it('AccessDenied names the bucket and the operation; startup still passes (policies without ListBucket)', async () => {
    const stranger = await rgw.addUser('stranger');
    const client = open({ AccessKey: stranger.accessKey, SecretKey: stranger.secretKey });
    const write = await caught(client.put('denied/x', 3, Readable.from([Buffer.from('abc')])));
    expect(write.message).toMatch(/access denied: cannot write denied\/x in s3:\/\/client-tests/);
    const read = await caught(client.get('denied/x'));
    expect(read.message).toMatch(/access denied: cannot read denied\/x in s3:\/\/client-tests/);
    expect(read.message).not.toContain(stranger.secretKey);
    await expect(client.checkAccess(quiet)).resolves.toBeUndefined();
  });

  it('an unknown access key gives InvalidAccessKeyId at startup', async () => {
    const startup = await caught(open({ AccessKey: 'NOSUCHKEY' }).checkAccess(quiet));
    expect(startup.name).toBe('ConfigurationError');
    expect(startup.message).toContain('InvalidAccessKeyId');
  });

  it('a missing bucket stops startup; good settings pass the startup check', async () => {
    const startup = await caught(open({}, 'no-such-bucket').checkAccess(quiet));
    expect(startup.name).toBe('ConfigurationError');
    expect(startup.message).toContain('does not exist');
    await expect(open().checkAccess(quiet)).resolves.toBeUndefined();
  });

  it("without AccessKey and SecretKey, uses the SDK's default chain (here: the environment)", async () => {
    const saved = { ...process.env };
    try {
      process.env.AWS_ACCESS_KEY_ID = rgw.accessKey;
      process.env.AWS_SECRET_ACCESS_KEY = rgw.secretKey;
      const client = open({ AccessKey: undefined, SecretKey: undefined });
      await client.put('chain/env', 3, Readable.from([Buffer.from('env')]));
      expect((await storedBytes('chain/env')).toString()).toBe('env');

      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      process.env.AWS_EC2_METADATA_DISABLED = 'true'; // nothing may leave loopback
      process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/credentials';
      process.env.AWS_CONFIG_FILE = '/nonexistent/config';
      const none = await caught(open({ AccessKey: undefined, SecretKey: undefined }).get('chain/env'));
      expect(none.message).toMatch(/no credentials: set AccessKey and SecretKey/);
    } finally {
      process.env = saved;
    }
  });
});

describe('connection options', () => {
  it('RequestTimeout bounds a stalled server, with MaxRetries + 1 attempts', async () => {
    const client = open({ RequestTimeout: 1, MaxRetries: 1 });
    await client.put('timeout/object', 3, Readable.from([Buffer.from('abc')]));
    rgw.pause();
    let error: Error;
    try {
      error = await caught(client.get('timeout/object'));
    } finally {
      rgw.resume();
    }
    expect(error.message).toMatch(/timeout|timed out|ETIMEDOUT/i);
    expect((error.cause as { $metadata?: { attempts?: number } }).$metadata?.attempts).toBe(2);
    const { body } = await client.get('timeout/object');
    expect((await readAll(body)).toString()).toBe('abc');
  });

  it('MaxConnections sizes both HTTP agents; HttpsCACertificates must be readable', async () => {
    const client = open({ MaxConnections: 3 });
    const handler = client.client.config.requestHandler as unknown as {
      httpHandlerConfigs(): { httpAgent: { maxSockets: number }; httpsAgent: { maxSockets: number } };
    };
    // The handler resolves its configuration on first use.
    await client.put('agents/x', 1, Readable.from([Buffer.from('x')]));
    expect(handler.httpHandlerConfigs().httpAgent.maxSockets).toBe(3);
    expect(handler.httpHandlerConfigs().httpsAgent.maxSockets).toBe(3);
    const settings = { ...rgwSettings(rgw, BUCKET) };
    const withCa = {
      ...settings,
      orthanc: { ...settings.orthanc, httpsCaCertificates: '/nonexistent/ca.pem' },
    };
    expect(() => new S3BucketClient(withCa, quiet)).toThrow(/HttpsCACertificates.*\/nonexistent\/ca\.pem/);
  });

  it('HttpsCACertificates is the trust store of https endpoints', async () => {
    const https = { Endpoint: rgw.httpsEndpoint, MaxRetries: 0 };
    const untrusted = await caught(open(https).put('tls/x', 3, Readable.from([Buffer.from('abc')])));
    expect(untrusted.message).toMatch(
      /cannot write tls\/x in s3:\/\/client-tests \(endpoint https:.*self.signed certificate/,
    );

    const settings = rgwSettings(rgw, BUCKET, https);
    const trusted = new S3BucketClient(
      { ...settings, orthanc: { ...settings.orthanc, httpsCaCertificates: certPath } },
      quiet,
    );
    clients.push(trusted);
    await trusted.put('tls/x', 3, Readable.from([Buffer.from('abc')]));
    expect((await readAll((await trusted.get('tls/x')).body)).toString()).toBe('abc');
  });

  it('EnableAwsSdkLogs sends one line per call to our log, without keys or signatures', async () => {
    const lines: string[] = [];
    const log = {
      info: (m: string) => lines.push(m),
      warn: (m: string) => lines.push(m),
      error: (m: string) => lines.push(m),
    };
    const client = new S3BucketClient(rgwSettings(rgw, BUCKET, { EnableAwsSdkLogs: true }), log);
    clients.push(client);
    await client.put('logs/x', 3, Readable.from([Buffer.from('abc')]));
    await caught(client.get('logs/missing'));
    expect(lines.some((line) => line.includes('PutObjectCommand') && line.includes('HTTP 200'))).toBe(true);
    expect(lines.some((line) => line.includes('GetObjectCommand') && line.includes('NoSuchKey'))).toBe(true);
    const all = lines.join('\n');
    expect(all).not.toContain(rgw.secretKey);
    expect(all).not.toContain(rgw.accessKey);
    expect(all).not.toMatch(/Signature=|AWS4-HMAC-SHA256 Credential/);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.length).toBeLessThan(20);
  });
});
