import { createHash } from 'node:crypto';
import { PassThrough, Writable, pipeline as pipelineCallback, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { A1_MAGIC, A1_OVERHEAD, describeMagic } from '../../crypto/a1-format.js';
import { createA1DecryptStream } from '../../crypto/a1-decrypt-stream.js';
import {
  C1_HEADER_SIZE,
  C1_MAGIC,
  checkC1ObjectSize,
  chunkCount,
  decodeC1Header,
  openC1Header,
} from '../../crypto/c1-format.js';
import { createC1ChunkDecryptStream } from '../../crypto/c1-decrypt-stream.js';
import type { Keyring } from '../../crypto/keyring.js';
import { readHead } from '../../crypto/read-head.js';
import { IntegrityError } from '../../errors.js';
import type { BucketClient, ListedObject } from '../../storage/contract.js';
import { exactSize } from '../../storage/exact-size.js';

export type ObjectFormat = 'C1' | 'A1' | 'plaintext';

/** What an object's first bytes say, without reading (or authenticating) the rest. */
export interface ObjectHead {
  readonly format: ObjectFormat;
  readonly keyId?: number;
}

/** An object opened for reading: its plaintext body is good only once it has ended without error. */
export interface OpenedObject extends ObjectHead {
  readonly storedSize: number;
  readonly plaintextSize: number;
  /** C1 only: the attachment its header is bound to. */
  readonly boundTo?: { uuid: string; type: number };
  readonly plaintext: Readable;
}

/** What reading an object through to its end established. */
export interface CheckedObject extends Omit<OpenedObject, 'plaintext'> {
  /** Hex sha256 of the plaintext, for comparisons after a rewrite. */
  readonly plaintextSha256: string;
}

const ignore = (): void => {};

/**
 * The format and key id of an object from its first bytes (one range request). With `keyring`
 * undefined (encryption off) every object is plaintext.
 */
export async function readObjectHead(
  client: BucketClient,
  object: ListedObject,
  keyring: Keyring | undefined,
): Promise<ObjectHead> {
  if (keyring === undefined || object.size < 2) return { format: 'plaintext' };
  const length = Math.min(object.size, C1_HEADER_SIZE);
  const parts: Buffer[] = [];
  for await (const part of await client.getRange(object.name, 0, length)) parts.push(part as Buffer);
  return headOf(Buffer.concat(parts), `object ${object.name}`);
}

function headOf(head: Buffer, what: string): ObjectHead {
  const magic = head.subarray(0, 2);
  if (magic.equals(C1_MAGIC) && head.length >= C1_HEADER_SIZE) {
    return { format: 'C1', keyId: decodeC1Header(head, what).keyId };
  }
  if (magic.equals(A1_MAGIC) && head.length >= 6) return { format: 'A1', keyId: head.readUInt32LE(2) };
  return { format: 'plaintext' };
}

/**
 * Open one object for reading its plaintext: C1 and A1 decrypted and authenticated as they flow
 * (with the keyring), plaintext checked for its exact size (and the provider's checksum by the
 * client's read). `encrypted: false` reads an object as plaintext whatever its bytes. The body
 * fails with IntegrityError (or the key's error) naming the object when a check fails.
 */
export async function openObject(
  client: BucketClient,
  name: string,
  keyring: Keyring | undefined,
  { encrypted = keyring !== undefined }: { encrypted?: boolean } = {},
): Promise<OpenedObject> {
  const what = `object ${name}`;
  const { size, body } = await client.get(name);
  if (keyring === undefined || !encrypted) {
    const plaintext = new PassThrough();
    pipelineCallback(body, exactSize(size, `reading ${name}`, 'stored'), plaintext, ignore);
    return { format: 'plaintext', storedSize: size, plaintextSize: size, plaintext };
  }
  const { head, body: whole } = await readHead(body, C1_HEADER_SIZE);
  try {
    const { format, keyId } = headOf(head, what);
    if (format === 'C1') {
      const decoded = decodeC1Header(head, what);
      const header = openC1Header(head, keyring, what);
      checkC1ObjectSize(header, size, what);
      const last = chunkCount(header.plaintextSize, header.chunkSize) - 1;
      const plaintext = createC1ChunkDecryptStream(
        { header, inputHasHeader: true, first: 0, last, start: 0, end: header.plaintextSize },
        { label: name },
      );
      pipelineCallback(whole, plaintext, ignore);
      return {
        format,
        keyId,
        storedSize: size,
        plaintextSize: header.plaintextSize,
        boundTo: { uuid: decoded.uuid, type: decoded.contentType },
        plaintext,
      };
    }
    if (format === 'A1') {
      if (size < A1_OVERHEAD) {
        throw new IntegrityError(
          `${what} is ${size} bytes, shorter than the ${A1_OVERHEAD}-byte A1 overhead`,
        );
      }
      const plaintext = createA1DecryptStream(keyring, { label: name, size });
      pipelineCallback(whole, plaintext, ignore);
      return { format, keyId, storedSize: size, plaintextSize: size - A1_OVERHEAD, plaintext };
    }
    throw new IntegrityError(
      `${what} is not encrypted although encryption is on: its version bytes are ${describeMagic(head.subarray(0, 2))}`,
    );
  } catch (error) {
    whole.destroy();
    throw error;
  }
}

/** A sink that hashes what it is given: sha256 always, md5 when asked. */
export function hashingSink(withMd5: boolean): {
  sink: Writable;
  sha256: () => string;
  md5: () => string;
} {
  const sha256 = createHash('sha256');
  const md5 = withMd5 ? createHash('md5') : undefined;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      sha256.update(chunk);
      md5?.update(chunk);
      done();
    },
  });
  return { sink, sha256: () => sha256.digest('hex'), md5: () => md5?.digest('hex') ?? '' };
}

/**
 * Read one object to its end and authenticate it (see openObject); for plaintext also the MD5 the
 * listing gave. Throws IntegrityError (or the key's error) naming the object when it fails.
 */
export async function checkObject(
  client: BucketClient,
  object: Pick<ListedObject, 'name' | 'md5'>,
  keyring: Keyring | undefined,
  options: { encrypted?: boolean } = {},
): Promise<CheckedObject> {
  const { plaintext, ...opened } = await openObject(client, object.name, keyring, options);
  const plain = opened.format === 'plaintext';
  const hashes = hashingSink(plain);
  await pipeline(plaintext, hashes.sink);
  if (plain && object.md5 !== undefined && hashes.md5() !== object.md5) {
    throw new IntegrityError(
      `object ${object.name}: its bytes do not match the MD5 the provider stored for it`,
    );
  }
  return { ...opened, plaintextSha256: hashes.sha256() };
}
