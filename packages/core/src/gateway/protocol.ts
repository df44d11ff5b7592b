// Wire protocol between the native shim (native/wire.c) and the gateway, over a Unix socket.
// Little-endian, one request at a time per connection:
//   request  = header(32) uuid body(size bytes, create only)
//   response = header(16) message
//   reads    = header(16, status ok, size N) message, N bytes, trailer header(16) message
// The trailer carries the final status: the shim hands bytes to Orthanc only when it is ok,
// which is how an integrity failure detected at the end of a stream reaches Orthanc.
//
// Forwarded calls (REST routes, job callbacks: everything besides storage), one channel for all:
//   invoke   = header(32, op Invoke, uuidLength = name length, contentType = meta length,
//              size = body length) name meta(JSON) body
//   answer   = header(16, status, messageLength = meta length, size = body length) meta body
// Before its final answer (status Ok: meta + body; other status: the message is the error) the
// gateway may ask Orthanc something, any number of times, on the same connection:
//   gateway  = header(16, status OrthancRequest, meta length, body length) meta body
//   shim     = header(32, op OrthancAnswer, uuidLength 0, meta length, body length) meta body
// The names the gateway serves and the metadata of each are in forwarded-calls.ts; the routes and
// job types to register are announced in the handshake ("restRoutes", "jobTypes").

export const REQUEST_MAGIC = Buffer.from('OSQ1', 'latin1');
export const RESPONSE_MAGIC = Buffer.from('OSR1', 'latin1');
export const REQUEST_HEADER_SIZE = 32;
export const RESPONSE_HEADER_SIZE = 16;
export const MAX_UUID_LENGTH = 128;
export const MAX_MESSAGE_LENGTH = 0xffff;

export enum Operation {
  Create = 1,
  ReadWhole = 2,
  ReadRange = 3,
  Remove = 4,
  /** A forwarded call: REST route or job callback. */
  Invoke = 5,
  /** The shim's answer to an OrthancRequest of the gateway. */
  OrthancAnswer = 6,
}

export enum Status {
  Ok = 0,
  NotFound = 1,
  RangeNotSatisfiable = 2,
  IntegrityError = 3,
  BadRequest = 4,
  Failed = 5,
  /** During an Invoke: the gateway asks Orthanc something (REST API, job submission). */
  OrthancRequest = 6,
}

export interface RequestHeader {
  readonly operation: Operation;
  readonly uuidLength: number;
  readonly contentType: number;
  readonly offset: number;
  readonly size: number;
}

export interface ResponseHeader {
  readonly status: Status;
  readonly messageLength: number;
  readonly size: number;
}

/** Thrown when the peer breaks the protocol: the connection cannot continue. */
export class ProtocolError extends Error {}

/** 2^32: the high half of a 64-bit field is read and written as its own 32-bit word (no BigInt per call). */
const HIGH = 0x1_0000_0000;

function readSafeInteger(buffer: Buffer, at: number, what: string): number {
  const high = buffer.readUInt32LE(at + 4);
  if (high > 0x1f_ffff) throw new ProtocolError(`${what} ${buffer.readBigUInt64LE(at)} is too large`);
  return high * HIGH + buffer.readUInt32LE(at);
}

function writeSafeInteger(buffer: Buffer, value: number, at: number): void {
  buffer.writeUInt32LE(value % HIGH, at);
  buffer.writeUInt32LE(Math.floor(value / HIGH), at + 4);
}

export function encodeRequestHeader(header: RequestHeader): Buffer {
  const buffer = Buffer.alloc(REQUEST_HEADER_SIZE);
  REQUEST_MAGIC.copy(buffer, 0);
  buffer.writeUInt8(header.operation, 4);
  buffer.writeUInt16LE(header.uuidLength, 6);
  buffer.writeUInt32LE(header.contentType, 8);
  writeSafeInteger(buffer, header.offset, 16);
  writeSafeInteger(buffer, header.size, 24);
  return buffer;
}

export function decodeRequestHeader(buffer: Buffer): RequestHeader {
  if (buffer.length !== REQUEST_HEADER_SIZE || !buffer.subarray(0, 4).equals(REQUEST_MAGIC)) {
    throw new ProtocolError('bad request magic');
  }
  const operation = buffer.readUInt8(4);
  if (!(operation in Operation)) throw new ProtocolError(`unknown operation ${operation}`);
  const uuidLength = buffer.readUInt16LE(6);
  const nameless = operation === Operation.OrthancAnswer;
  if ((uuidLength === 0 && !nameless) || uuidLength > MAX_UUID_LENGTH)
    throw new ProtocolError(`bad uuid length ${uuidLength}`);
  return {
    operation,
    uuidLength,
    contentType: buffer.readUInt32LE(8),
    offset: readSafeInteger(buffer, 16, 'offset'),
    size: readSafeInteger(buffer, 24, 'size'),
  };
}

/** Response header followed by its message (UTF-8, truncated to 64 KiB). */
export function encodeResponse(status: Status, size: number, message = ''): Buffer {
  let text = Buffer.from(message, 'utf8');
  if (text.length > MAX_MESSAGE_LENGTH) text = text.subarray(0, MAX_MESSAGE_LENGTH);
  const buffer = Buffer.alloc(RESPONSE_HEADER_SIZE + text.length);
  RESPONSE_MAGIC.copy(buffer, 0);
  buffer.writeUInt8(status, 4);
  buffer.writeUInt16LE(text.length, 6);
  writeSafeInteger(buffer, size, 8);
  text.copy(buffer, RESPONSE_HEADER_SIZE);
  return buffer;
}

export function decodeResponseHeader(buffer: Buffer): ResponseHeader {
  if (buffer.length !== RESPONSE_HEADER_SIZE || !buffer.subarray(0, 4).equals(RESPONSE_MAGIC)) {
    throw new ProtocolError('bad response magic');
  }
  return {
    status: buffer.readUInt8(4),
    messageLength: buffer.readUInt16LE(6),
    size: readSafeInteger(buffer, 8, 'size'),
  };
}
