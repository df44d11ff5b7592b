import {
  decodeRequestHeader,
  decodeResponseHeader,
  encodeRequestHeader,
  encodeResponse,
  Operation,
  ProtocolError,
  REQUEST_HEADER_SIZE,
  RESPONSE_HEADER_SIZE,
  Status,
} from './protocol.js';

describe('gateway wire protocol', () => {
  it('round-trips a request header, with 64-bit offsets and 32-bit content types', () => {
    const header = {
      operation: Operation.ReadRange,
      uuidLength: 36,
      contentType: 1025,
      offset: 2 ** 40 + 3,
      size: 65536,
    };
    const bytes = encodeRequestHeader(header);
    expect(bytes.length).toBe(REQUEST_HEADER_SIZE);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('OSQ1');
    expect(decodeRequestHeader(bytes)).toEqual(header);
  });

  it('lays the request header out as the C shim does (little-endian, fixed offsets)', () => {
    const bytes = encodeRequestHeader({
      operation: Operation.Create,
      uuidLength: 36,
      contentType: 3,
      offset: 0,
      size: 258,
    });
    expect(bytes[4]).toBe(1);
    expect(bytes.readUInt16LE(6)).toBe(36);
    expect(bytes.readUInt32LE(8)).toBe(3);
    expect(bytes[24]).toBe(2);
    expect(bytes[25]).toBe(1);
  });

  it('refuses a bad magic, an unknown operation and an out-of-range uuid length', () => {
    const good = encodeRequestHeader({
      operation: Operation.Remove,
      uuidLength: 36,
      contentType: 1,
      offset: 0,
      size: 0,
    });
    const badMagic = Buffer.from(good);
    badMagic[0] = 0x58;
    expect(() => decodeRequestHeader(badMagic)).toThrow(ProtocolError);
    const badOperation = Buffer.from(good);
    badOperation[4] = 9;
    expect(() => decodeRequestHeader(badOperation)).toThrow(/unknown operation 9/);
    const noUuid = Buffer.from(good);
    noUuid.writeUInt16LE(0, 6);
    expect(() => decodeRequestHeader(noUuid)).toThrow(/uuid length 0/);
    const longUuid = Buffer.from(good);
    longUuid.writeUInt16LE(129, 6);
    expect(() => decodeRequestHeader(longUuid)).toThrow(/uuid length 129/);
  });

  it('refuses sizes JavaScript cannot represent exactly', () => {
    const bytes = encodeRequestHeader({
      operation: Operation.Create,
      uuidLength: 36,
      contentType: 1,
      offset: 0,
      size: 0,
    });
    bytes.writeBigUInt64LE(2n ** 60n, 24);
    expect(() => decodeRequestHeader(bytes)).toThrow(/too large/);
  });

  it('encodes a response with its message and decodes the header', () => {
    const bytes = encodeResponse(Status.NotFound, 0, 'object not found: é');
    const header = decodeResponseHeader(bytes.subarray(0, RESPONSE_HEADER_SIZE));
    expect(header).toEqual({
      status: Status.NotFound,
      messageLength: Buffer.byteLength('object not found: é'),
      size: 0,
    });
    expect(bytes.subarray(RESPONSE_HEADER_SIZE).toString('utf8')).toBe('object not found: é');
  });

  it('truncates messages to the 16-bit length field', () => {
    const bytes = encodeResponse(Status.Failed, 0, 'x'.repeat(70_000));
    expect(decodeResponseHeader(bytes.subarray(0, RESPONSE_HEADER_SIZE)).messageLength).toBe(0xffff);
    expect(bytes.length).toBe(RESPONSE_HEADER_SIZE + 0xffff);
  });
});
