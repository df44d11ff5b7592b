import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
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

/** What reading an object through to its end established. */
export interface CheckedObject {
  readonly format: ObjectFormat;
  readonly keyId?: number;
  readonly storedSize: number;
  readonly plaintextSize: number;
  /** C1 only: the attachment its header is bound to. */
  readonly boundTo?: { uuid: string; type: number };
  /** Hex sha256 of the plaintext, for comparisons after a rewrite. */
  readonly plaintextSha256: string;
}

/**
 * Read one object to its end and authenticate it: C1 and A1 by their GCM tags (with the keyring),
 * plaintext by its exact size and the provider's checksum (checked by the client's read, or the
 * listing's MD5). Throws IntegrityError (or the key's error) naming the object when it fails.
 */
export async function checkObject(
  client: BucketClient,
  object: ListedObject,
  keyring: Keyring | undefined,
): Promise<CheckedObject> {
  const what = `object ${object.name}`;
  const { size, body } = await client.get(object.name);
  const sha256 = createHash('sha256');
  const md5 = createHash('md5');
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      sha256.update(chunk);
      if (keyring === undefined) md5.update(chunk);
      done();
    },
  });
  if (keyring === undefined) {
    await pipeline(body, exactSize(size, `reading ${object.name}`, 'stored'), sink);
    if (object.md5 !== undefined && md5.digest('hex') !== object.md5) {
      throw new IntegrityError(`${what}: its bytes do not match the MD5 the provider stored for it`);
    }
    return {
      format: 'plaintext',
      storedSize: size,
      plaintextSize: size,
      plaintextSha256: sha256.digest('hex'),
    };
  }
  const { head, body: whole } = await readHead(body, C1_HEADER_SIZE);
  const magic = head.subarray(0, 2);
  if (magic.equals(C1_MAGIC)) {
    const decoded = decodeC1Header(head, what);
    const header = openC1Header(head, keyring, what);
    checkC1ObjectSize(header, size, what);
    const last = chunkCount(header.plaintextSize, header.chunkSize) - 1;
    const plain = createC1ChunkDecryptStream(
      { header, inputHasHeader: true, first: 0, last, start: 0, end: header.plaintextSize },
      { label: object.name },
    );
    await pipeline(whole, plain, sink);
    return {
      format: 'C1',
      keyId: decoded.keyId,
      storedSize: size,
      plaintextSize: header.plaintextSize,
      boundTo: { uuid: decoded.uuid, type: decoded.contentType },
      plaintextSha256: sha256.digest('hex'),
    };
  }
  if (magic.equals(A1_MAGIC)) {
    if (size < A1_OVERHEAD) {
      whole.destroy();
      throw new IntegrityError(`${what} is ${size} bytes, shorter than the ${A1_OVERHEAD}-byte A1 overhead`);
    }
    const keyId = head.readUInt32LE(2);
    await pipeline(whole, createA1DecryptStream(keyring, { label: object.name }), sink);
    return {
      format: 'A1',
      keyId,
      storedSize: size,
      plaintextSize: size - A1_OVERHEAD,
      plaintextSha256: sha256.digest('hex'),
    };
  }
  whole.destroy();
  throw new IntegrityError(
    `${what} is not encrypted although encryption is on: its version bytes are ${describeMagic(magic)}`,
  );
}
