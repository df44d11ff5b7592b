import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { IntegrityError, ObjectNotFoundError, RangeNotSatisfiableError } from '../errors.js';
import type { Logger } from '../logging.js';
import type { ContentType, ObjectKey, ObjectStorage } from '../storage/contract.js';
import { eachChunk } from '../storage/each-chunk.js';
import { releaseChunk } from '../storage/reusable-buffers.js';
import {
  decodeRequestHeader,
  encodeResponse,
  Operation,
  ProtocolError,
  REQUEST_HEADER_SIZE,
  Status,
  type RequestHeader,
} from './protocol.js';
import { SocketReader } from './socket-reader.js';
import { describeTransfer } from './transfer-log.js';
import type { InvokeAnswer, InvokeHandler } from './forwarded-calls.js';

/** Zero padding lets a read that fails midway still end with a trailer carrying the reason. */
const MAX_PADDING = 4 * 1024 * 1024;

export function statusOf(error: unknown): Status {
  if (error instanceof ObjectNotFoundError) return Status.NotFound;
  if (error instanceof RangeNotSatisfiableError) return Status.RangeNotSatisfiable;
  if (error instanceof IntegrityError) return Status.IntegrityError;
  return Status.Failed;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

class ConnectionClosed extends Error {}

/** The answer to a successful create or remove, and the trailer of a good read: made once. */
const OK_ANSWER = encodeResponse(Status.Ok, 0);

function write(socket: Socket, data: Buffer): Promise<void> {
  if (socket.destroyed || !socket.writable) return Promise.reject(new ConnectionClosed('connection closed'));
  if (socket.write(data)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new ConnectionClosed('connection closed'));
    socket.on('drain', onDrain);
    socket.on('close', onClose);
  });
}

/**
 * Writes `data` and waits until the socket has handed all of it to the kernel (not just until its
 * buffer has room): only then may the memory behind `data` be reused.
 */
function writeOut(socket: Socket, data: Buffer): Promise<void> {
  if (socket.destroyed || !socket.writable) return Promise.reject(new ConnectionClosed('connection closed'));
  return new Promise((resolve, reject) =>
    socket.write(data, (error) => (error ? reject(new ConnectionClosed('connection closed')) : resolve())),
  );
}

/** Largest body of a forwarded call (REST bodies and job states are small). */
const MAX_INVOKE_BODY = 256 * 1024 * 1024;

/** Serves requests one after another on a connection from the shim, until it closes. */
export async function serveConnection(
  socket: Socket,
  storage: ObjectStorage,
  log: Logger,
  invoke?: InvokeHandler,
  /** Let reads land straight in their final memory where Node allows it (false: 'data' events). */
  directReads = true,
): Promise<void> {
  const reader = new SocketReader(socket, undefined, directReads);
  socket.on('error', () => {}); // reported through the reader and writes
  try {
    for (;;) {
      const headerBytes = await reader.readExactly(REQUEST_HEADER_SIZE);
      if (headerBytes === null) return;
      const header = decodeRequestHeader(headerBytes);
      const uuidBytes = await reader.readExactly(header.uuidLength);
      if (uuidBytes === null) return;
      if (header.operation === Operation.Invoke) {
        await serveInvoke(socket, reader, header, uuidBytes.toString('utf8'), log, invoke);
        continue;
      }
      if (header.operation === Operation.OrthancAnswer)
        throw new ProtocolError('answer outside a forwarded call');
      const key: ObjectKey = { uuid: uuidBytes.toString('latin1'), type: header.contentType as ContentType };
      await serveRequest(socket, reader, storage, log, header, key);
    }
  } catch (error) {
    if (error instanceof ProtocolError) {
      log.error(`gateway: protocol error from the shim: ${error.message}; closing the connection`);
      await write(socket, encodeResponse(Status.BadRequest, 0, `protocol error: ${error.message}`)).catch(
        () => {},
      );
    } else if (!(error instanceof ConnectionClosed)) {
      log.warn(`gateway: connection ended: ${messageOf(error)}`);
    }
  } finally {
    socket.destroy();
  }
}

/** Reads the meta (JSON object) and body that follow a forwarded call's header. */
async function readMetaAndBody(
  reader: SocketReader,
  metaLength: number,
  size: number,
): Promise<{ meta: Record<string, unknown>; body: Buffer }> {
  if (size > MAX_INVOKE_BODY) throw new ProtocolError(`forwarded body of ${size} bytes is too large`);
  const metaBytes = metaLength > 0 ? await reader.readExactly(metaLength) : Buffer.alloc(0);
  const body = size > 0 ? await reader.readExactly(size) : Buffer.alloc(0);
  if (metaBytes === null || body === null) throw new ConnectionClosed('connection closed');
  let meta: unknown;
  try {
    meta = metaLength > 0 ? JSON.parse(metaBytes.toString('utf8')) : {};
  } catch {
    throw new ProtocolError('forwarded meta is not JSON');
  }
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta))
    throw new ProtocolError('forwarded meta is not a JSON object');
  return { meta: meta as Record<string, unknown>, body };
}

async function sendAnswer(socket: Socket, status: Status, answer: InvokeAnswer): Promise<void> {
  const body = answer.body ?? Buffer.alloc(0);
  await write(socket, encodeResponse(status, body.length, JSON.stringify(answer.meta)));
  if (body.length > 0) await write(socket, body);
}

async function serveInvoke(
  socket: Socket,
  reader: SocketReader,
  header: RequestHeader,
  name: string,
  log: Logger,
  invoke: InvokeHandler | undefined,
): Promise<void> {
  const { meta, body } = await readMetaAndBody(reader, header.contentType, header.size);
  const channel = {
    request: async (requestMeta: Record<string, unknown>, requestBody?: Buffer): Promise<InvokeAnswer> => {
      await sendAnswer(socket, Status.OrthancRequest, { meta: requestMeta, body: requestBody });
      const answerHeader = await reader.readExactly(REQUEST_HEADER_SIZE);
      if (answerHeader === null) throw new ConnectionClosed('connection closed');
      const decoded = decodeRequestHeader(answerHeader);
      if (decoded.operation !== Operation.OrthancAnswer)
        throw new ProtocolError('expected an answer from Orthanc');
      return readMetaAndBody(reader, decoded.contentType, decoded.size);
    },
  };
  let answer: InvokeAnswer;
  try {
    if (invoke === undefined) throw new Error(`this gateway serves no forwarded calls (asked for ${name})`);
    answer = await invoke({ name, meta, body }, channel);
  } catch (error) {
    if (error instanceof ProtocolError || error instanceof ConnectionClosed) throw error;
    log.error(`gateway: ${name} failed: ${messageOf(error)}`);
    await write(socket, encodeResponse(Status.Failed, 0, messageOf(error)));
    return;
  }
  await sendAnswer(socket, Status.Ok, answer);
}

async function serveRequest(
  socket: Socket,
  reader: SocketReader,
  storage: ObjectStorage,
  log: Logger,
  header: RequestHeader,
  key: ObjectKey,
): Promise<void> {
  const started = performance.now();
  const what = `attachment ${key.uuid} of type ${key.type}`;
  switch (header.operation) {
    case Operation.Create: {
      const body = reader.body(header.size);
      let failure: unknown;
      try {
        await storage.create(key, header.size, body);
        if (body.remaining > 0) throw new Error(`storage returned before reading ${body.remaining} bytes`);
      } catch (error) {
        failure = error;
      }
      if (body.remaining > 0) await body.discardRest(); // keep the connection in step
      if (failure !== undefined) {
        await write(socket, encodeResponse(statusOf(failure), 0, messageOf(failure)));
        return;
      }
      log.info(`created ${what}: ${describeTransfer(header.size, performance.now() - started)}`);
      await write(socket, OK_ANSWER);
      return;
    }
    case Operation.Remove: {
      try {
        await storage.remove(key);
      } catch (error) {
        await write(socket, encodeResponse(statusOf(error), 0, messageOf(error)));
        return;
      }
      log.info(`removed ${what} (${(performance.now() - started).toFixed(1)} ms)`);
      await write(socket, OK_ANSWER);
      return;
    }
    case Operation.ReadWhole:
    case Operation.ReadRange: {
      const range = header.operation === Operation.ReadRange;
      let size: number;
      let body: Readable;
      try {
        if (range) {
          size = header.size;
          body = await storage.readRange(key, header.offset, header.size);
        } else {
          ({ size, body } = await storage.read(key));
        }
      } catch (error) {
        await write(socket, encodeResponse(statusOf(error), 0, messageOf(error)));
        return;
      }
      await sendBody(socket, body, size, key, log);
      const label = range ? `read range [${header.offset}, +${size}) of` : 'read whole';
      log.info(`${label} ${what}: ${describeTransfer(size, performance.now() - started)}`);
      return;
    }
  }
}

/**
 * Streams exactly `size` bytes, then a trailer whose status says whether they are good. The header
 * goes out with the first chunk, in one system call; a failure before it is a plain error answer.
 */
async function sendBody(
  socket: Socket,
  body: Readable,
  size: number,
  key: ObjectKey,
  log: Logger,
): Promise<void> {
  let header: Buffer | undefined = encodeResponse(Status.Ok, size);
  let sent = 0;
  const sendChunk = async (chunk: Buffer): Promise<void> => {
    if (sent + chunk.length > size)
      throw new IntegrityError(`object ${key.uuid} is longer than its size ${size}`);
    sent += chunk.length;
    if (header === undefined) {
      await writeOut(socket, chunk);
    } else {
      socket.cork();
      const written = Promise.all([write(socket, header), writeOut(socket, chunk)]);
      header = undefined;
      socket.uncork();
      await written;
    }
    releaseChunk(body, chunk); // sent: the storage may reuse its memory
  };
  try {
    // Chunk by chunk as the storage made them: a decrypt stream pushes up to 16 per 1 MiB file
    // read, which joining would copy into one more buffer only to write it out.
    await eachChunk(body, sendChunk, { asProduced: true });
    if (sent !== size) throw new IntegrityError(`object ${key.uuid} ended after ${sent} of ${size} bytes`);
  } catch (error) {
    body.destroy();
    if (error instanceof ConnectionClosed) throw error;
    const status = statusOf(error) === Status.Ok ? Status.Failed : statusOf(error);
    if (header !== undefined) {
      // Nothing sent yet: answer the error itself.
      await write(socket, encodeResponse(status, 0, messageOf(error)));
      return;
    }
    const missing = size - sent;
    if (missing > MAX_PADDING) {
      // Too much to pad: cut the connection, the shim reports the read as failed.
      log.error(`error while reading object ${key.uuid}: ${messageOf(error)}`);
      throw new ConnectionClosed('aborted');
    }
    if (missing > 0) await write(socket, Buffer.alloc(missing));
    await write(socket, encodeResponse(status, 0, messageOf(error)));
    return;
  }
  if (header !== undefined) await write(socket, header); // an empty object
  await write(socket, OK_ANSWER);
}
