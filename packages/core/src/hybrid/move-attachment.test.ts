import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createEncryptionLayer } from '../crypto/index.js';
import { IntegrityError } from '../errors.js';
import type { StorageSide } from '../storage/compose.js';
import { ContentType, type ObjectStorage } from '../storage/contract.js';
import { FileSystemStorage } from '../storage/fs-storage.js';
import { moveAttachment } from './move-attachment.js';
import type { Attachment } from './resources.js';

const uuid = '0123abcd-2345-4678-89ab-cdef01234567';
const key = { uuid, type: ContentType.Dicom };
const body = randomBytes(300_000);
const md5 = createHash('md5').update(body).digest('hex');
const attachment: Attachment = {
  resource: 'instances/00000000-00000000-00000000-00000000-00000000',
  contentType: ContentType.Dicom,
  name: 'dicom',
  uuid,
  size: body.length,
  md5,
};

let dir: string;
let fileSystem: StorageSide;
let objects: StorageSide;

async function plaintext(side: StorageSide): Promise<Buffer> {
  const { body: stream } = await side.storage.read(key);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const pathIn = (root: string) => join(root, uuid.slice(0, 2), uuid.slice(2, 4), uuid);

describe.each(['C1', 'A1'] as const)('moveAttachment, encryption writing %s', (writeFormat) => {
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oos-move-'));
    await writeFile(join(dir, 'key'), randomBytes(32).toString('base64'));
    const encrypt = await createEncryptionLayer({
      enabled: true,
      masterKey: { id: 4, path: join(dir, 'key') },
      previousMasterKeys: [],
      maxConcurrentInputBytes: 64 * 1024 * 1024,
      writeFormat,
    });
    const side = (name: StorageSide['name'], root: string): StorageSide => {
      const raw = new FileSystemStorage({ root, sync: false });
      return { name, storage: encrypt(raw), raw };
    };
    fileSystem = side('file-system', join(dir, 'fs'));
    objects = side('object-storage', join(dir, 'objects'));
    await fileSystem.storage.create(key, body.length, Readable.from([body]));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the target, checks it, then removes the source', async () => {
    expect(await moveAttachment(attachment, fileSystem, objects)).toEqual({
      moved: true,
      bytes: body.length,
    });
    expect(existsSync(pathIn(join(dir, 'fs')))).toBe(false);
    expect((await plaintext(objects)).equals(body)).toBe(true);
    // Encrypted on the target like on the source, with the current key id.
    const stored = await readFile(pathIn(join(dir, 'objects')));
    expect(stored.subarray(0, 2).toString()).toBe(writeFormat);
    expect(stored.readUInt32LE(2)).toBe(4);
  });

  it('moves a user-defined attachment (1025), which Orthanc stored as content type Unknown', async () => {
    const user = { ...attachment, uuid: uuid.replace('0123', '4567'), contentType: 1025, name: '1025' };
    const userKey = { uuid: user.uuid, type: ContentType.Unknown };
    await fileSystem.storage.create(userKey, body.length, Readable.from([body]));
    expect(await moveAttachment(user, fileSystem, objects)).toEqual({ moved: true, bytes: body.length });
    const { body: moved } = await objects.storage.read(userKey);
    const chunks: Buffer[] = [];
    for await (const chunk of moved) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
  });

  it('finishes a move a crash interrupted after the copy (both sides hold it)', async () => {
    await objects.storage.create(key, body.length, Readable.from([body]));
    expect(await moveAttachment(attachment, fileSystem, objects)).toEqual({
      moved: true,
      bytes: body.length,
    });
    expect(existsSync(pathIn(join(dir, 'fs')))).toBe(false);
    expect((await plaintext(objects)).equals(body)).toBe(true);
  });

  it('skips an attachment already on the target', async () => {
    await moveAttachment(attachment, fileSystem, objects);
    expect(await moveAttachment(attachment, fileSystem, objects)).toEqual({ moved: false });
    expect((await plaintext(objects)).equals(body)).toBe(true);
  });

  it('reports an attachment on neither side', async () => {
    await fileSystem.raw.remove(key);
    await expect(moveAttachment(attachment, fileSystem, objects)).rejects.toThrow(
      /is neither on the file-system nor on the object-storage/,
    );
  });

  it("keeps a source that does not match Orthanc's MD5, and no copy", async () => {
    const wrong = { ...attachment, md5: createHash('md5').update('other').digest('hex') };
    await expect(moveAttachment(wrong, fileSystem, objects)).rejects.toThrow(IntegrityError);
    expect((await plaintext(fileSystem)).equals(body)).toBe(true);
    expect(existsSync(pathIn(join(dir, 'objects')))).toBe(false);
  });

  it("keeps a source whose size is not Orthanc's", async () => {
    await expect(moveAttachment({ ...attachment, size: 5 }, fileSystem, objects)).rejects.toThrow(
      /holds 300000 bytes on the file-system; Orthanc expects 5/,
    );
    expect((await plaintext(fileSystem)).equals(body)).toBe(true);
    expect(existsSync(pathIn(join(dir, 'objects')))).toBe(false);
  });

  it("runs two moves of the same attachment one after the other (they could remove each other's copy)", async () => {
    const events: string[] = [];
    const traced = (side: StorageSide, move: string): StorageSide => {
      const inner = side.storage;
      const storage: ObjectStorage = {
        supportsVerifiedRangeReads: inner.supportsVerifiedRangeReads,
        read: (k) => (events.push(`${move} read ${side.name}`), inner.read(k)),
        readRange: (k, offset, length) => inner.readRange(k, offset, length),
        create: async (k, size, stream) => {
          events.push(`${move} write ${side.name}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
          await inner.create(k, size, stream);
        },
        remove: (k) => inner.remove(k),
        close: () => inner.close(),
      };
      return { ...side, storage };
    };
    const [there, back] = await Promise.all([
      moveAttachment(attachment, traced(fileSystem, 'A'), traced(objects, 'A')),
      moveAttachment(attachment, traced(objects, 'B'), traced(fileSystem, 'B')),
    ]);
    expect(events).toEqual([
      'A read file-system',
      'A write object-storage',
      'A read object-storage',
      'B read object-storage',
      'B write file-system',
      'B read file-system',
    ]);
    expect([there, back]).toEqual([
      { moved: true, bytes: body.length },
      { moved: true, bytes: body.length },
    ]);
    expect((await plaintext(fileSystem)).equals(body)).toBe(true);
    expect(existsSync(pathIn(join(dir, 'objects')))).toBe(false);
  });

  it('never removes a source whose encrypted bytes fail their tag', async () => {
    const file = pathIn(join(dir, 'fs'));
    const stored = await readFile(file);
    stored[stored.length - 1]! ^= 1;
    await writeFile(file, stored);
    await expect(moveAttachment({ ...attachment, md5: '' }, fileSystem, objects)).rejects.toThrow();
    expect(existsSync(file)).toBe(true);
    expect(existsSync(pathIn(join(dir, 'objects')))).toBe(false);
  });
});
