import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../logging.js';
import { FileSystemStorage } from '../storage/fs-storage.js';
import {
  decodeResponseHeader,
  encodeRequestHeader,
  Operation,
  RESPONSE_HEADER_SIZE,
  Status,
} from './protocol.js';
import { OrthancApi, OrthancError, type InvokeHandler } from './forwarded-calls.js';
import { serveConnection } from './serve-connection.js';
import { GatewayServices, jsonAnswer } from './services.js';
import { SocketReader } from './socket-reader.js';

/** A frame as the shim sends it: header, name, meta, body. */
function frame(operation: Operation, name: string, meta: unknown, body = Buffer.alloc(0)): Buffer {
  const nameBytes = Buffer.from(name);
  const metaBytes = Buffer.from(JSON.stringify(meta));
  const header = encodeRequestHeader({
    operation,
    uuidLength: nameBytes.length,
    contentType: metaBytes.length,
    offset: 0,
    size: body.length,
  });
  return Buffer.concat([header, nameBytes, metaBytes, body]);
}

async function readAnswer(reader: SocketReader) {
  const header = decodeResponseHeader((await reader.readExactly(RESPONSE_HEADER_SIZE))!);
  const meta = (await reader.readExactly(header.messageLength))!.toString();
  const body = header.size > 0 ? (await reader.readExactly(header.size))! : Buffer.alloc(0);
  return { status: header.status, meta, body };
}

describe('forwarded calls on the wire', () => {
  let dir: string;
  let server: Server;
  let socketPath: string;
  let client: Socket;
  let reader: SocketReader;

  async function start(invoke: InvokeHandler): Promise<void> {
    const storage = new FileSystemStorage({ root: join(dir, 'objects'), sync: false });
    server = createServer((socket) => void serveConnection(socket, storage, silentLogger, invoke));
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    client = connect(socketPath);
    reader = new SocketReader(client);
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oos-forward-'));
    socketPath = join(dir, 'gateway.sock');
  });

  afterEach(async () => {
    client?.destroy();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('serves a call that asks Orthanc something first, on the same connection', async () => {
    await start(async (request, channel) => {
      const orthanc = new OrthancApi(channel);
      const system = await orthanc.get<{ Version: string }>('/system');
      return {
        meta: { status: 200, name: request.name },
        body: Buffer.from(`${system.Version} ${request.body}`),
      };
    });
    client.write(frame(Operation.Invoke, 'rest', { method: 'GET', uri: '/x' }, Buffer.from('payload')));
    const request = await readAnswer(reader);
    expect(request.status).toBe(Status.OrthancRequest);
    expect(JSON.parse(request.meta)).toEqual({ call: 'rest', method: 'GET', uri: '/system' });
    client.write(frame(Operation.OrthancAnswer, '', { error: 0 }, Buffer.from('{"Version":"1.10.1"}')));
    const answer = await readAnswer(reader);
    expect(answer.status).toBe(Status.Ok);
    expect(JSON.parse(answer.meta)).toEqual({ status: 200, name: 'rest' });
    expect(answer.body.toString()).toBe('1.10.1 payload');
  });

  it("answers Orthanc's error code when Orthanc refuses a request", async () => {
    const services = new GatewayServices(
      [
        {
          pattern: '/things/([^/]+)',
          handle: async (request, orthanc) =>
            jsonAnswer(await orthanc.get(`/instances/${request.groups[0]}`)),
        },
      ],
      [],
      silentLogger,
    );
    await start(services.invoke.bind(services));
    client.write(
      frame(Operation.Invoke, 'rest', { method: 'GET', uri: '/things/a', groups: ['a'], get: [] }),
    );
    await readAnswer(reader); // the gateway's GET /instances/a
    client.write(frame(Operation.OrthancAnswer, '', { error: 17 }));
    const answer = await readAnswer(reader);
    expect(answer.status).toBe(Status.Ok);
    expect(JSON.parse(answer.meta)).toEqual({
      error: 17,
      details: 'Orthanc answered error 17 to GET /instances/a',
    });
  });

  it('hands job callbacks their state without the "Type" Orthanc adds when it saves a job', async () => {
    const seen: Record<string, unknown>[] = [];
    const services = new GatewayServices(
      [],
      [
        {
          type: 'Demo',
          step: () => Promise.reject(new OrthancError(1, 'unused')),
          stop: () => ({ progress: 0, content: {}, state: {} }),
          reset: () => ({ progress: 0, content: {}, state: {} }),
          unserialize: (state) => {
            seen.push(state);
            return { progress: 0.25, content: { Shown: true }, state };
          },
        },
      ],
      silentLogger,
    );
    expect(services.announcement).toEqual({ restRoutes: [], jobTypes: ['Demo'] });
    await start(services.invoke.bind(services));
    client.write(
      frame(Operation.Invoke, 'job.unserialize', { type: 'Demo' }, Buffer.from('{"Type":"Demo","n":3}')),
    );
    const answer = await readAnswer(reader);
    expect(seen).toEqual([{ n: 3 }]);
    expect(JSON.parse(answer.meta)).toEqual({ progress: 0.25 });
    expect(answer.body.toString()).toBe('{"Shown":true}\n{"n":3}');
  });

  it('fails an unknown job type with a message, and keeps the connection usable', async () => {
    await start(
      new GatewayServices([], [], silentLogger).invoke.bind(new GatewayServices([], [], silentLogger)),
    );
    client.write(frame(Operation.Invoke, 'job.step', { type: 'Nope' }, Buffer.from('{}')));
    const failed = await readAnswer(reader);
    expect(failed.status).toBe(Status.Failed);
    expect(failed.meta).toMatch(/no job type "Nope"/);
    client.write(frame(Operation.Invoke, 'job.step', { type: 'Nope' }, Buffer.from('{}')));
    expect((await readAnswer(reader)).status).toBe(Status.Failed);
  });
});
