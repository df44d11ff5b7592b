// BucketClient's read guarantee on S3: a body cut short by the server never ends cleanly. No layer
// above counts the bytes again, so this rests on HTTP framing (Content-Length), checked here
// against a server that announces more bytes than it sends.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { parseProviderSettings } from '@orthanc-object-storage/core';
import { S3BucketClient } from './s3-bucket-client.js';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const SIZE = 100_000;

let server: Server;
let client: S3BucketClient;
/** Bytes the server sends of the SIZE it announces. */
let sent = SIZE;

async function readAll(body: Readable): Promise<number> {
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) total += chunk.length;
  return total;
}

beforeAll(async () => {
  server = createServer((request, response) => {
    const range = /^bytes=(\d+)-(\d+)$/.exec(request.headers.range ?? '');
    const [first, last] = range === null ? [0, SIZE - 1] : [Number(range[1]), Number(range[2])];
    const length = last - first + 1;
    response.writeHead(range === null ? 200 : 206, {
      'content-length': String(length),
      'content-type': 'application/octet-stream',
      ...(range !== null && { 'content-range': `bytes ${first}-${last}/${SIZE}` }),
    });
    const body = Buffer.alloc(Math.min(length, sent), 7);
    response.flushHeaders();
    if (body.length === length) {
      response.end(body);
      return;
    }
    response.write(body, () => setTimeout(() => request.socket.destroy(), 20));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const { settings } = parseProviderSettings('aws', {
    AwsS3Storage: {
      BucketName: 'short-bodies',
      Region: 'us-east-1',
      AccessKey: 'access',
      SecretKey: 'secret',
      Endpoint: `http://127.0.0.1:${port}`,
      VirtualAddressing: false,
    },
  });
  client = new S3BucketClient(settings!, quiet);
});

afterAll(async () => {
  await client.close();
  await new Promise((resolve) => server.close(resolve));
});

describe('S3BucketClient bodies are exactly the announced size or fail', () => {
  it('reads a whole body the server sends in full', async () => {
    sent = SIZE;
    const { size, body } = await client.get('whole');
    expect(size).toBe(SIZE);
    expect(await readAll(body)).toBe(SIZE);
  });

  it('fails a whole read the server cuts short', async () => {
    sent = 40_000;
    const { size, body } = await client.get('cut');
    expect(size).toBe(SIZE);
    await expect(readAll(body)).rejects.toThrow(/aborted/);
  });

  it('fails a range read the server cuts short, and reads a full range', async () => {
    sent = 10_000;
    await expect(readAll(await client.getRange('cut', 1000, 50_000))).rejects.toThrow(/aborted/);
    sent = SIZE;
    expect(await readAll(await client.getRange('whole', 1000, 50_000))).toBe(50_000);
  });
});
