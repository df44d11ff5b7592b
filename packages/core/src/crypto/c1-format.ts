import { createCipheriv, createDecipheriv } from 'node:crypto';
import { IntegrityError, KeyError } from '../errors.js';
import type { ObjectKey } from '../storage/contract.js';
import { describeMagic, type MasterKey } from './a1-format.js';
import type { Keyring } from './keyring.js';

// The C1 format: see docs/c1-format.md (the specification). Little-endian integers.

export const C1_MAGIC = Buffer.from('C1', 'ascii');
export const C1_HEADER_SIZE = 105;
export const C1_TAG_SIZE = 16;
/** What writers use; readers accept any size in [C1_MIN_CHUNK_SIZE, C1_MAX_CHUNK_SIZE]. */
export const C1_CHUNK_SIZE = 65_536;
export const C1_MIN_CHUNK_SIZE = 1024;
export const C1_MAX_CHUNK_SIZE = 16_777_216;
export const C1_NONCE_PREFIX_SIZE = 7;
export const C1_WRAPPED_KEY_SIZE = 40;
export const C1_DATA_KEY_SIZE = 32;
export const C1_UUID_SIZE = 36;
/** The chunk index is a uint32 in the nonce. */
export const C1_MAX_CHUNKS = 0x1_0000_0000;

const KEY_ID_AT = 2;
const CHUNK_SIZE_AT = 6;
const PLAINTEXT_SIZE_AT = 10;
const NONCE_PREFIX_AT = 18;
const WRAPPED_KEY_AT = 25;
const CONTENT_TYPE_AT = 65;
const UUID_AT = 69;

/** RFC 3394's default initial value. */
const KEY_WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
const UUID_PATTERN = /^[\x21-\x7e]{36}$/;

/** The fields of a C1 header, plus the header bytes themselves (the AAD of every chunk). */
export interface C1Header {
  readonly bytes: Buffer;
  readonly keyId: number;
  readonly chunkSize: number;
  readonly plaintextSize: number;
  readonly noncePrefix: Buffer;
  readonly wrappedKey: Buffer;
  readonly contentType: number;
  readonly uuid: string;
}

/** A header whose data key has been unwrapped. */
export interface OpenC1Header extends C1Header {
  readonly dataKey: Buffer;
}

/** Number of chunks: an empty plaintext is one empty final chunk. */
export function chunkCount(plaintextSize: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(plaintextSize / chunkSize));
}

/** Size of the whole object: header, ciphertext, one tag per chunk. */
export function c1ObjectSize(plaintextSize: number, chunkSize: number): number {
  return C1_HEADER_SIZE + plaintextSize + C1_TAG_SIZE * chunkCount(plaintextSize, chunkSize);
}

/** Plaintext bytes of chunk `index`. */
export function chunkPlaintextSize(header: C1Header, index: number): number {
  return Math.min(header.chunkSize, header.plaintextSize - index * header.chunkSize);
}

/** Offset of chunk `index` (its ciphertext, then its tag) in the object. */
export function chunkOffset(header: C1Header, index: number): number {
  return C1_HEADER_SIZE + index * (header.chunkSize + C1_TAG_SIZE);
}

/** The 12-byte GCM nonce of chunk `index`: prefix, big-endian index, last-chunk flag. */
export function chunkNonce(noncePrefix: Buffer, index: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  noncePrefix.copy(nonce, 0);
  nonce.writeUInt32BE(index, C1_NONCE_PREFIX_SIZE);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** AES-256 Key Wrap (RFC 3394) of a 32-byte data key under the master key: 40 bytes. */
export function wrapDataKey(masterKey: Buffer, dataKey: Buffer): Buffer {
  const cipher = createCipheriv('id-aes256-wrap', masterKey, KEY_WRAP_IV);
  return Buffer.concat([cipher.update(dataKey), cipher.final()]);
}

/** Unwrap; undefined when the integrity check of RFC 3394 fails (wrong master key or corrupted). */
export function unwrapDataKey(masterKey: Buffer, wrapped: Buffer): Buffer | undefined {
  try {
    const decipher = createDecipheriv('id-aes256-wrap', masterKey, KEY_WRAP_IV);
    return Buffer.concat([decipher.update(wrapped), decipher.final()]);
  } catch {
    return undefined;
  }
}

export interface C1HeaderFields {
  readonly master: MasterKey;
  readonly chunkSize: number;
  readonly plaintextSize: number;
  readonly noncePrefix: Buffer;
  readonly dataKey: Buffer;
  readonly attachment: ObjectKey;
}

/** Build the 105-byte header; throws RangeError on values the format cannot hold. */
export function encodeC1Header(fields: C1HeaderFields): OpenC1Header {
  const { master, chunkSize, plaintextSize, noncePrefix, dataKey, attachment } = fields;
  if (!Number.isInteger(chunkSize) || chunkSize < C1_MIN_CHUNK_SIZE || chunkSize > C1_MAX_CHUNK_SIZE) {
    throw new RangeError(`C1 chunk size ${chunkSize} is outside ${C1_MIN_CHUNK_SIZE}..${C1_MAX_CHUNK_SIZE}`);
  }
  if (!Number.isSafeInteger(plaintextSize) || plaintextSize < 0) {
    throw new RangeError(`C1 plaintext size ${plaintextSize} must be a non-negative safe integer`);
  }
  if (chunkCount(plaintextSize, chunkSize) > C1_MAX_CHUNKS) {
    throw new RangeError(`a ${plaintextSize}-byte plaintext needs more than 2^32 chunks of ${chunkSize}`);
  }
  if (noncePrefix.length !== C1_NONCE_PREFIX_SIZE || dataKey.length !== C1_DATA_KEY_SIZE) {
    throw new RangeError(`C1 needs a ${C1_NONCE_PREFIX_SIZE}-byte nonce prefix and a 32-byte data key`);
  }
  if (!UUID_PATTERN.test(attachment.uuid)) {
    throw new RangeError(
      `C1 binds objects to 36-character attachment uuids as Orthanc gives them; got ${JSON.stringify(attachment.uuid)}`,
    );
  }
  if (!Number.isInteger(attachment.type) || attachment.type < 0 || attachment.type > 0xffff_ffff) {
    throw new RangeError(`content type ${attachment.type} is not a uint32`);
  }
  const bytes = Buffer.alloc(C1_HEADER_SIZE);
  C1_MAGIC.copy(bytes, 0);
  bytes.writeUInt32LE(master.id, KEY_ID_AT);
  bytes.writeUInt32LE(chunkSize, CHUNK_SIZE_AT);
  bytes.writeBigUInt64LE(BigInt(plaintextSize), PLAINTEXT_SIZE_AT);
  noncePrefix.copy(bytes, NONCE_PREFIX_AT);
  const wrappedKey = wrapDataKey(master.key, dataKey);
  wrappedKey.copy(bytes, WRAPPED_KEY_AT);
  bytes.writeUInt32LE(attachment.type, CONTENT_TYPE_AT);
  bytes.write(attachment.uuid, UUID_AT, 'latin1');
  return {
    bytes,
    keyId: master.id,
    chunkSize,
    plaintextSize,
    noncePrefix: Buffer.from(noncePrefix),
    wrappedKey,
    contentType: attachment.type,
    uuid: attachment.uuid,
    dataKey: Buffer.from(dataKey),
  };
}

/**
 * Parse a header without any key: for `inspect` and before unwrapping. Checks what can be
 * checked without a key: magic, chunk size, plaintext size. `what` names the object.
 */
export function decodeC1Header(bytes: Buffer, what: string): C1Header {
  if (bytes.length < C1_HEADER_SIZE) {
    throw new IntegrityError(
      `${what} is ${bytes.length} bytes, shorter than the ${C1_HEADER_SIZE}-byte C1 header: it is truncated`,
    );
  }
  const header = bytes.subarray(0, C1_HEADER_SIZE);
  const magic = header.subarray(0, 2);
  if (!magic.equals(C1_MAGIC)) {
    throw new IntegrityError(`${what} is not a C1 object: its version bytes are ${describeMagic(magic)}`);
  }
  const chunkSize = header.readUInt32LE(CHUNK_SIZE_AT);
  if (chunkSize < C1_MIN_CHUNK_SIZE || chunkSize > C1_MAX_CHUNK_SIZE) {
    throw new IntegrityError(
      `${what} has a corrupted C1 header: chunk size ${chunkSize} is outside ` +
        `${C1_MIN_CHUNK_SIZE}..${C1_MAX_CHUNK_SIZE}`,
    );
  }
  const plaintextSize = header.readBigUInt64LE(PLAINTEXT_SIZE_AT);
  if (plaintextSize > BigInt(Number.MAX_SAFE_INTEGER) || Number(plaintextSize) / chunkSize > C1_MAX_CHUNKS) {
    throw new IntegrityError(
      `${what} has a corrupted C1 header: plaintext size ${plaintextSize} is too large`,
    );
  }
  return {
    bytes: Buffer.from(header),
    keyId: header.readUInt32LE(KEY_ID_AT),
    chunkSize,
    plaintextSize: Number(plaintextSize),
    noncePrefix: Buffer.from(header.subarray(NONCE_PREFIX_AT, NONCE_PREFIX_AT + C1_NONCE_PREFIX_SIZE)),
    wrappedKey: Buffer.from(header.subarray(WRAPPED_KEY_AT, WRAPPED_KEY_AT + C1_WRAPPED_KEY_SIZE)),
    contentType: header.readUInt32LE(CONTENT_TYPE_AT),
    uuid: header.subarray(UUID_AT, UUID_AT + C1_UUID_SIZE).toString('latin1'),
  };
}

/** Parse a header and unwrap its data key with the master key its id names. */
export function openC1Header(bytes: Buffer, keyring: Keyring, what: string): OpenC1Header {
  const header = decodeC1Header(bytes, what);
  if (!keyring.has(header.keyId)) {
    throw new KeyError(
      `${what} was encrypted with master key id ${header.keyId}, which is not configured ` +
        `(known ids: ${keyring.ids().join(', ')})`,
    );
  }
  const dataKey = unwrapDataKey(keyring.get(header.keyId).key, header.wrappedKey);
  if (dataKey === undefined || dataKey.length !== C1_DATA_KEY_SIZE) {
    throw new IntegrityError(
      `${what}: its data key does not unwrap under master key id ${header.keyId} (AES key wrap integrity ` +
        'check failed): the key file configured for that id is not the key the object was written with, ' +
        'or its header is corrupted',
    );
  }
  return { ...header, dataKey };
}

/** Throws unless the object's size is exactly what its header implies (catches truncation and extension). */
export function checkC1ObjectSize(header: C1Header, objectSize: number, what: string): void {
  const expected = c1ObjectSize(header.plaintextSize, header.chunkSize);
  if (objectSize !== expected) {
    throw new IntegrityError(
      `${what} is ${objectSize} bytes, but its C1 header (plaintext ${header.plaintextSize} bytes in ` +
        `${chunkCount(header.plaintextSize, header.chunkSize)} chunks of ${header.chunkSize}) implies ${expected}: ` +
        (objectSize < expected ? 'it is truncated' : 'it has extra bytes'),
    );
  }
}

const CONTENT_TYPE_NAMES: Record<number, string> = {
  0: 'unknown',
  1: 'DICOM',
  2: 'DICOM as JSON',
  3: 'DICOM until pixel data',
};

export function describeAttachment(uuid: string, type: number): string {
  const name = CONTENT_TYPE_NAMES[type];
  return `attachment ${uuid} (content type ${type}${name === undefined ? '' : `, ${name}`})`;
}

/**
 * Throws unless the (authenticated) header names the attachment Orthanc asked for: otherwise
 * the object was stored, copied or renamed over another attachment's name.
 */
export function checkC1Binding(header: C1Header, expected: ObjectKey, what: string): void {
  if (header.uuid === expected.uuid && header.contentType === expected.type) return;
  throw new IntegrityError(
    `${what} holds ${describeAttachment(header.uuid, header.contentType)}, not the requested ` +
      `${describeAttachment(expected.uuid, expected.type)}: it was stored or copied under another ` +
      "attachment's name; refusing to return its bytes",
  );
}
