import { createHash } from 'node:crypto';
import { pipeline, Transform } from 'node:stream';
import type { WriteFormat } from '../../config/settings.js';
import { A1_OVERHEAD } from '../../crypto/a1-format.js';
import { createA1EncryptStream } from '../../crypto/a1-encrypt-stream.js';
import { C1_CHUNK_SIZE, c1ObjectSize } from '../../crypto/c1-format.js';
import { createC1EncryptStream } from '../../crypto/c1-encrypt-stream.js';
import type { Keyring } from '../../crypto/keyring.js';
import { IntegrityError, ObjectStorageError, PreconditionFailedError } from '../../errors.js';
import type { BucketClient, ListedObject, ObjectKey } from '../../storage/contract.js';
import { checkObject, openObject } from './check-object.js';

/** Where a rewritten object's replacement is written before the swap: beside the original. */
export const REPLACEMENT_SUFFIX = '.reencrypt';

export interface Rewrite {
  readonly client: BucketClient;
  readonly keyring: Keyring;
  readonly writeFormat: WriteFormat;
  /** The object as listed: its version makes the swap conditional. */
  readonly source: ListedObject;
  /** Whether the source is stored encrypted (false: plaintext, written with encryption off). */
  readonly sourceEncrypted: boolean;
  /** The attachment, for C1's binding (its type may be unknown with the `legacy` structure). */
  readonly attachment: { uuid: string; type: ObjectKey['type'] | undefined };
  /** The object's name once encrypted: the source's own name, or its `.enc` name for plaintext. */
  readonly target: string;
}

/** `done`: the target holds the verified replacement; `gone`: Orthanc removed the object meanwhile. */
export type RewriteOutcome = 'done' | 'gone';

/**
 * Rewrite one object under the current master key and write format, never putting it at risk:
 * 1. encrypt its plaintext (authenticated as it is read) into a new object beside it, hashing it;
 * 2. read that back, authenticate it and compare the plaintext's sha256;
 * 3. swap: for a same-name rewrite, copy it over the original with a conditional write
 *    (`ifVersion`: only over the version listed, so an object Orthanc deleted is not brought back),
 *    read the result back the same way, then remove the replacement; for plaintext, the replacement
 *    is already the `.enc` name, and the plaintext original is removed once checked still there.
 * Any failure leaves the original (or a verified replacement) in place and throws.
 */
export async function rewriteObject(rewrite: Rewrite): Promise<RewriteOutcome> {
  const { client, keyring, source, target } = rewrite;
  const inPlace = target === source.name;
  const replacement = inPlace ? `${source.name}${REPLACEMENT_SUFFIX}` : target;
  const original = await openObject(client, source.name, keyring, { encrypted: rewrite.sourceEncrypted });
  let encrypt: Transform;
  let storedSize: number;
  try {
    const attachment = attachmentFor(rewrite, original.boundTo);
    ({ encrypt, storedSize } = encryptStream(rewrite, original.plaintextSize, attachment));
  } catch (error) {
    original.plaintext.destroy(); // release the connection of the read already opened
    throw error;
  }
  // One read of the original feeds both the hash and the encryption; a failed check fails the put.
  const sha256 = createHash('sha256');
  // Plaintext is authenticated by the MD5 an S3 listing gives (Azure and GCS reads check theirs).
  const md5 = original.format === 'plaintext' && source.md5 !== undefined ? createHash('md5') : undefined;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sha256.update(chunk);
      md5?.update(chunk);
      done(null, chunk);
    },
  });
  pipeline(original.plaintext, tap, encrypt, () => {});
  await client.put(replacement, storedSize, encrypt);
  const sourceSha256 = sha256.digest('hex');
  if (md5 !== undefined && md5.digest('hex') !== source.md5) {
    await client.delete(replacement);
    throw new IntegrityError(
      `object ${source.name}: its bytes do not match the MD5 the provider stored for it: left as it is`,
    );
  }

  await expectReplacement(rewrite, replacement, sourceSha256);
  if (inPlace) {
    try {
      const { size, body } = await client.get(replacement);
      await client.put(source.name, size, body, { ifVersion: source.version });
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      await client.delete(replacement);
      return 'gone';
    }
    await expectReplacement(rewrite, source.name, sourceSha256);
    await client.delete(replacement);
    return 'done';
  }
  // Plaintext to its `.enc` name: remove the original only if Orthanc has not removed it meanwhile.
  if ((await listedVersion(client, source.name)) !== source.version) {
    await client.delete(replacement);
    return 'gone';
  }
  await client.delete(source.name);
  return 'done';
}

function attachmentFor(rewrite: Rewrite, boundTo: { uuid: string; type: number } | undefined): ObjectKey {
  const { uuid, type } = rewrite.attachment;
  if (boundTo !== undefined && (boundTo.uuid !== uuid || (type !== undefined && boundTo.type !== type))) {
    throw new IntegrityError(
      `object ${rewrite.source.name}: its C1 header names attachment ${boundTo.uuid} (type ${boundTo.type}), not the one its name says: left as it is`,
    );
  }
  const known = type ?? boundTo?.type;
  if (known === undefined) {
    if (rewrite.writeFormat === 'A1') return { uuid, type: 0 };
    throw new ObjectStorageError(
      `object ${rewrite.source.name}: its name (legacy StorageStructure) does not say its content type, which C1 binds: set WriteFormat A1 to rewrite it`,
    );
  }
  return { uuid, type: known };
}

function encryptStream(
  rewrite: Rewrite,
  size: number,
  attachment: ObjectKey,
): { encrypt: Transform; storedSize: number } {
  const label = rewrite.source.name;
  if (rewrite.writeFormat === 'A1') {
    return {
      encrypt: createA1EncryptStream(rewrite.keyring.current, { label, expectedSize: size }),
      storedSize: size + A1_OVERHEAD,
    };
  }
  return {
    encrypt: createC1EncryptStream(rewrite.keyring.current, { label, size, attachment }),
    storedSize: c1ObjectSize(size, C1_CHUNK_SIZE),
  };
}

/** Read `name` back: it must authenticate, be in the write format under the current key, and hold the same plaintext. */
async function expectReplacement(rewrite: Rewrite, name: string, sha256: string): Promise<void> {
  const checked = await checkObject(rewrite.client, { name }, rewrite.keyring);
  const current = rewrite.keyring.current.id;
  if (checked.format !== rewrite.writeFormat || checked.keyId !== current) {
    throw new IntegrityError(
      `object ${name}: read back as ${checked.format} under key ${checked.keyId}, expected ${rewrite.writeFormat} under key ${current}`,
    );
  }
  if (checked.plaintextSha256 !== sha256) {
    throw new IntegrityError(
      `object ${name}: its plaintext differs from the original's (sha256 ${checked.plaintextSha256}, expected ${sha256})`,
    );
  }
}

/** The version a listing gives for exactly `name`, undefined when it does not exist (one request). */
export async function listedVersion(client: BucketClient, name: string): Promise<string | undefined> {
  for await (const found of client.list(name, { pageSize: 10 })) {
    if (found.name === name) return found.version;
    if (found.name > name) break;
  }
  return undefined;
}
