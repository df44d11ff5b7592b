import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { IntegrityError, ObjectNotFoundError } from '../errors.js';
import type { Logger } from '../logging.js';
import type { ObjectKey, ObjectReadStream, ObjectStorage } from '../storage/contract.js';
import { FileSystemStorage } from '../storage/fs-storage.js';
import { releaseChunk } from '../storage/reusable-buffers.js';
import { encodeRequestHeader, Operation, Status } from './protocol.js';
import { serveConnection } from './serve-connection.js';
import { SocketReader } from './socket-reader.js';
import { GatewayStatusError, ShimClient } from './shim-client.js';

const DICOM = 1;

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`I ${m}`),
    warn: (m) => lines.push(`W ${m}`),
    error: (m) => lines.push(`E ${m}`),
  };
}

async function listen(
  storage: ObjectStorage,
  log: Logger,
  socketPath: string,
  directReads = true,
): Promise<Server> {
  const server = createServer((socket) => void serveConnection(socket, storage, log, undefined, directReads));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return server;
}

describe.each([
  ['reads landing in their final memory', true],
  ["reads through 'data' events (Node without the hooks)", false],
])('gateway connections over a Unix socket, file-system backend: %s', (_mode, directReads) => {
  let dir: string;
  let server: Server;
  let socketPath: string;
  const log = recordingLogger();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oos-gateway-test-'));
    socketPath = join(dir, 'gateway.sock');
    server = await listen(
      new FileSystemStorage({ root: join(dir, 'objects'), sync: false }),
      log,
      socketPath,
      directReads,
    );
  });

  it('uses the mode asked for', async () => {
    const accepted = new Promise<boolean>((resolve) => {
      const probe = createServer((socket) => {
        resolve(new SocketReader(socket, undefined, directReads).direct);
        socket.destroy();
        probe.close();
      });
      probe.listen(join(dir, 'probe.sock'), () =>
        createConnection(join(dir, 'probe.sock')).on('error', () => {}),
      );
    });
    // This Node offers the hooks: a Node upgrade that drops them fails here, not silently slower.
    expect(await accepted).toBe(directReads);
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('creates, reads whole, reads ranges and removes, on one connection', async () => {
    const client = await ShimClient.connect(socketPath);
    const uuid = randomUUID();
    const data = randomBytes(200_000);
    await client.create(uuid, DICOM, data);
    expect((await client.readWhole(uuid, DICOM)).equals(data)).toBe(true);
    expect((await client.readRange(uuid, DICOM, 0, 10)).equals(data.subarray(0, 10))).toBe(true);
    expect((await client.readRange(uuid, DICOM, 65_530, 20)).equals(data.subarray(65_530, 65_550))).toBe(
      true,
    );
    expect((await client.readRange(uuid, DICOM, 199_990, 10)).equals(data.subarray(199_990))).toBe(true);
    await client.remove(uuid, DICOM);
    await client.remove(uuid, DICOM); // idempotent
    await expect(client.readWhole(uuid, DICOM)).rejects.toMatchObject({ status: Status.NotFound });
    client.close();
    expect(log.lines.some((l) => l.startsWith(`I created attachment ${uuid} of type 1: 200.00 KB in`))).toBe(
      true,
    );
    expect(
      log.lines.some((l) => l.startsWith(`I read whole attachment ${uuid} of type 1: 200.00 KB in`)),
    ).toBe(true);
  });

  it('round-trips an empty object and a 5 MiB object', async () => {
    const client = await ShimClient.connect(socketPath);
    const empty = randomUUID();
    await client.create(empty, DICOM, Buffer.alloc(0));
    expect((await client.readWhole(empty, DICOM)).length).toBe(0);
    const big = randomUUID();
    const data = randomBytes(5 * 1024 * 1024);
    await client.create(big, DICOM, data);
    const back = await client.readWhole(big, DICOM);
    expect(createHash('sha256').update(back).digest('hex')).toBe(
      createHash('sha256').update(data).digest('hex'),
    );
    client.close();
  });

  it('answers a range past the end with an error and keeps the connection usable', async () => {
    const client = await ShimClient.connect(socketPath);
    const uuid = randomUUID();
    await client.create(uuid, DICOM, Buffer.from('0123456789'));
    await expect(client.readRange(uuid, DICOM, 8, 5)).rejects.toBeInstanceOf(GatewayStatusError);
    expect((await client.readRange(uuid, DICOM, 8, 2)).toString()).toBe('89');
    client.close();
  });

  it('keeps requests intact when several arrive in one write, headers mixed with bodies', async () => {
    // Each read then holds a request's header, the start of its body and bytes of the next
    // requests: the reader's staging memory must never be reused while bytes in it still wait.
    const objects = [150_000, 30, 70_000, 1, 200_000, 65_536, 5].map((size) => ({
      uuid: randomUUID(),
      data: randomBytes(size),
    }));
    const frames = objects.flatMap(({ uuid, data }) => [
      encodeRequestHeader({
        operation: Operation.Create,
        uuidLength: uuid.length,
        contentType: DICOM,
        offset: 0,
        size: data.length,
      }),
      Buffer.from(uuid, 'latin1'),
      data,
    ]);
    const raw = createConnection(socketPath);
    const answers: Buffer[] = [];
    const allAnswered = new Promise<void>((resolve) => {
      // A gateway that misread the stream may wait for bytes that never come: stop waiting, and
      // let the checks below fail (rather than jest's timeout, with this socket left open).
      const timer = setTimeout(resolve, 5000);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      raw.on('data', (chunk: Buffer) => {
        answers.push(chunk);
        if (Buffer.concat(answers).length >= 16 * objects.length) done();
      });
      raw.on('close', done); // e.g. a protocol error: the checks below fail
    });
    raw.write(Buffer.concat(frames));
    await allAnswered;
    raw.destroy();
    const answered = Buffer.concat(answers);
    for (let i = 0; i < objects.length; i++) {
      expect(answered.subarray(16 * i, 16 * i + 5)).toEqual(Buffer.from([0x4f, 0x53, 0x52, 0x31, Status.Ok]));
    }
    const client = await ShimClient.connect(socketPath);
    try {
      for (const { uuid, data } of objects) {
        const read = await Promise.race([
          client.readWhole(uuid, DICOM),
          new Promise<Buffer>((_, reject) => {
            setTimeout(() => reject(new Error(`reading ${uuid} back took over 5 s`)), 5000).unref();
          }),
        ]);
        expect(read.equals(data)).toBe(true);
      }
    } finally {
      client.close();
    }
  });

  it('serves 32 concurrent connections', async () => {
    const objects = Array.from({ length: 32 }, (_, i) => ({
      uuid: randomUUID(),
      data: randomBytes(1000 + i * 4099),
    }));
    await Promise.all(
      objects.map(async ({ uuid, data }) => {
        const client = await ShimClient.connect(socketPath);
        await client.create(uuid, DICOM, data);
        expect((await client.readWhole(uuid, DICOM)).equals(data)).toBe(true);
        client.close();
      }),
    );
  });

  it('answers a protocol error with BadRequest and closes the connection', async () => {
    const client = await ShimClient.connect(socketPath);
    const header = encodeRequestHeader({
      operation: Operation.Remove,
      uuidLength: 36,
      contentType: 1,
      offset: 0,
      size: 0,
    });
    header[0] = 0x21;
    client.rawSocket.write(Buffer.concat([header, Buffer.alloc(36, 0x61)]));
    const response = await client.readResponse();
    expect(response.status).toBe(Status.BadRequest);
    expect(response.message).toMatch(/bad request magic/);
    await expect(client.readResponse()).rejects.toThrow(/closed/);
  });
});

/** A storage whose behaviour each test scripts, to reach the failure paths. */
class ScriptedStorage implements ObjectStorage {
  readonly supportsVerifiedRangeReads = true;
  createImpl: (key: ObjectKey, size: number, body: Readable) => Promise<void> = async () => {};
  readImpl: (key: ObjectKey) => Promise<ObjectReadStream> = (key) =>
    Promise.reject(new ObjectNotFoundError(key.uuid, 'scripted'));
  create(key: ObjectKey, size: number, body: Readable) {
    return this.createImpl(key, size, body);
  }
  read(key: ObjectKey) {
    return this.readImpl(key);
  }
  readRange(): Promise<Readable> {
    return Promise.reject(new Error('not scripted'));
  }
  remove(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('gateway connections, failure paths', () => {
  let dir: string;
  let server: Server;
  let socketPath: string;
  const storage = new ScriptedStorage();
  const log = recordingLogger();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oos-gateway-fail-'));
    socketPath = join(dir, 'gateway.sock');
    server = await listen(storage, log, socketPath);
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('reports an integrity failure at the end of a read in the trailer: the bytes are refused', async () => {
    storage.readImpl = async () => ({
      size: 6,
      body: Readable.from(
        (async function* () {
          yield Buffer.from('secret');
          throw new IntegrityError('A1 tag mismatch for object x');
        })(),
      ),
    });
    const client = await ShimClient.connect(socketPath);
    await expect(client.readWhole(randomUUID(), DICOM)).rejects.toMatchObject({
      status: Status.IntegrityError,
      message: expect.stringMatching(/A1 tag mismatch/),
    });
    // Still in step: the next request on the same connection works.
    storage.readImpl = async () => ({ size: 2, body: Readable.from([Buffer.from('ok')]) });
    expect((await client.readWhole(randomUUID(), DICOM)).toString()).toBe('ok');
    client.close();
  });

  it('pads and fails a read whose stream ends short of its announced size', async () => {
    storage.readImpl = async () => ({ size: 100, body: Readable.from([Buffer.alloc(40, 1)]) });
    const client = await ShimClient.connect(socketPath);
    await expect(client.readWhole(randomUUID(), DICOM)).rejects.toMatchObject({
      status: Status.IntegrityError,
      message: expect.stringMatching(/ended after 40 of 100 bytes/),
    });
    client.close();
  });

  it('discards the rest of a create body the storage refused, and stays in step', async () => {
    storage.createImpl = async () => {
      throw new Error('bucket unreachable');
    };
    const client = await ShimClient.connect(socketPath);
    await expect(client.create(randomUUID(), DICOM, randomBytes(3 * 1024 * 1024))).rejects.toMatchObject({
      status: Status.Failed,
      message: 'Failed: bucket unreachable',
    });
    const received: Buffer[] = [];
    storage.createImpl = async (_key, _size, body) => {
      for await (const chunk of body) received.push(chunk as Buffer);
    };
    await client.create(randomUUID(), DICOM, Buffer.from('next'));
    expect(Buffer.concat(received).toString()).toBe('next');
    client.close();
  });

  it('hands a 0.5 MB body over as one chunk, reusing its memory only once the storage gave it back', async () => {
    const bodies = [randomBytes(560_000), randomBytes(560_000), randomBytes(560_000)];
    const seen: Array<{ chunks: number; copy: Buffer; memory: ArrayBufferLike; view: Buffer }> = [];
    let release = true;
    storage.createImpl = async (_key, _size, body) => {
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      seen.push({
        chunks: chunks.length,
        copy: Buffer.concat(chunks),
        memory: chunks[0]!.buffer,
        view: chunks[0]!,
      });
      if (release) for (const chunk of chunks) releaseChunk(body, chunk);
    };
    const client = await ShimClient.connect(socketPath);
    await client.create(randomUUID(), DICOM, bodies[0]!);
    await client.create(randomUUID(), DICOM, bodies[1]!);
    release = false; // a consumer that keeps its chunks: they must stay intact
    await client.create(randomUUID(), DICOM, bodies[2]!);
    await client.create(randomUUID(), DICOM, bodies[0]!);
    client.close();
    expect(seen.map((s) => s.chunks)).toEqual([1, 1, 1, 1]);
    for (const [i, body] of [...bodies, bodies[0]!].entries()) expect(seen[i]!.copy.equals(body)).toBe(true);
    expect(seen[1]!.memory).toBe(seen[0]!.memory); // given back, then reused
    expect(seen[2]!.memory).toBe(seen[1]!.memory);
    expect(seen[3]!.memory).not.toBe(seen[2]!.memory); // kept by its consumer: not reused
    expect(seen[2]!.view.equals(bodies[2]!)).toBe(true);
  });

  it('reuses the memory of a sent read only after the socket has taken all of it', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const released: number[] = [];
    storage.readImpl = async () => {
      const chunks = [data.subarray(0, 1 << 20), data.subarray(1 << 20, 3 << 20), data.subarray(3 << 20)];
      const body = Readable.from(chunks) as Readable & { releaseChunk?: (chunk: Buffer) => void };
      body.releaseChunk = (chunk) => released.push(chunk.length);
      return { size: data.length, body };
    };
    const client = await ShimClient.connect(socketPath);
    expect((await client.readWhole(randomUUID(), DICOM)).equals(data)).toBe(true);
    client.close();
    expect(released).toEqual([1 << 20, 2 << 20, 17]);
  });

  it('fails the storage stream when the shim disconnects in the middle of a create body', async () => {
    let failure: unknown;
    const settled = new Promise<void>((resolve) => {
      storage.createImpl = async (_key, _size, body) => {
        try {
          for await (const chunk of body) void chunk;
        } catch (error) {
          failure = error;
        }
        resolve();
      };
    });
    const client = await ShimClient.connect(socketPath);
    const uuid = Buffer.from(randomUUID(), 'latin1');
    const header = encodeRequestHeader({
      operation: Operation.Create,
      uuidLength: 36,
      contentType: 1,
      offset: 0,
      size: 1000,
    });
    client.rawSocket.end(Buffer.concat([header, uuid, Buffer.alloc(300)]));
    await settled;
    expect(String(failure)).toMatch(/closed after 300 of 1000 bytes/);
  });
});
