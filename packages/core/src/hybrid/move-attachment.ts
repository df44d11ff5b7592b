import { createHash, type Hash } from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import { IntegrityError, ObjectNotFoundError, ObjectStorageError } from '../errors.js';
import type { ObjectKey } from '../storage/contract.js';
import type { StorageSide } from '../storage/compose.js';
import { storageKeyOf, type Attachment } from './resources.js';

export type MoveOutcome = { readonly moved: true; readonly bytes: number } | { readonly moved: false };

/** Counts and hashes (sha256, md5) the bytes flowing through. */
class Digest extends Transform {
  readonly sha256: Hash = createHash('sha256');
  readonly md5: Hash = createHash('md5');
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.sha256.update(chunk);
    this.md5.update(chunk);
    this.bytes += chunk.length;
    callback();
    this.push(chunk);
  }
}

/** Reads a whole plaintext stream and answers its size and sha256 (bytes count only if it ends cleanly). */
async function digestOf(body: Readable): Promise<{ bytes: number; sha256: string }> {
  const digest = new Digest();
  await new Promise<void>((resolve, reject) => {
    pipeline(body, digest, (error) => (error ? reject(error) : resolve()));
    digest.resume();
  });
  return { bytes: digest.bytes, sha256: digest.sha256.digest('hex') };
}

/** The last move of each attachment uuid under way in this gateway. */
const inFlight = new Map<string, Promise<void>>();

/**
 * Moves one attachment from one side to the other, so that it is readable at every moment:
 * 1. read the plaintext from the source (decrypting and checking it when encrypted);
 * 2. write it to the target (encrypted alike), atomically;
 * 3. read the target back and compare size and sha256 with the source, and the source with
 *    Orthanc's size and MD5;
 * 4. only then remove it from the source.
 * An attachment found only on the target is already moved (a rerun after a crash finishes there).
 */
export async function moveAttachment(
  attachment: Attachment,
  from: StorageSide,
  to: StorageSide,
): Promise<MoveOutcome> {
  // Two jobs moving the same attachment in opposite directions could each remove the other's
  // copy: moves of one attachment run one after the other in this gateway.
  const previous = inFlight.get(attachment.uuid) ?? Promise.resolve();
  const current = previous.then(() => moveUnlocked(attachment, from, to));
  const settled = current.then(
    () => {},
    () => {},
  );
  inFlight.set(attachment.uuid, settled);
  try {
    return await current;
  } finally {
    if (inFlight.get(attachment.uuid) === settled) inFlight.delete(attachment.uuid);
  }
}

async function moveUnlocked(
  attachment: Attachment,
  from: StorageSide,
  to: StorageSide,
): Promise<MoveOutcome> {
  const key: ObjectKey = storageKeyOf(attachment);
  const what = `attachment ${attachment.uuid} (${attachment.name} of ${attachment.resource})`;
  let source;
  try {
    source = await from.storage.read(key);
  } catch (error) {
    if (!(error instanceof ObjectNotFoundError)) throw error;
    if ((await to.raw.inspect(key)) !== undefined) return { moved: false };
    throw new ObjectStorageError(`${what} is neither on the ${from.name} nor on the ${to.name}`);
  }
  if (source.size !== attachment.size) {
    source.body.destroy();
    throw new IntegrityError(
      `${what} holds ${source.size} bytes on the ${from.name}; Orthanc expects ${attachment.size}`,
    );
  }

  const digest = new Digest();
  pipeline(source.body, digest, () => {});
  try {
    await to.storage.create(key, source.size, digest);
  } catch (error) {
    digest.destroy();
    throw error;
  }
  const written = { bytes: digest.bytes, sha256: digest.sha256.digest('hex'), md5: digest.md5.digest('hex') };
  if (attachment.md5 !== '' && written.md5 !== attachment.md5) {
    // The source itself is not what Orthanc stored: keep it as it is, drop the copy.
    await to.raw.remove(key).catch(() => {});
    throw new IntegrityError(`${what} on the ${from.name} does not match Orthanc's MD5: not moved`);
  }

  const back = await to.storage.read(key);
  const check = await digestOf(back.body);
  if (back.size !== written.bytes || check.bytes !== written.bytes || check.sha256 !== written.sha256) {
    throw new IntegrityError(
      `${what}: the copy on the ${to.name} differs from the source; the source is kept`,
    );
  }
  await from.raw.remove(key);
  return { moved: true, bytes: written.bytes };
}
