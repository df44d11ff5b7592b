import { Readable } from 'node:stream';
import { ObjectNotFoundError } from '../errors.js';
import { BucketStorage, type BucketStorageOptions } from './bucket-storage.js';
import { ContentType } from './contract.js';
import { MemoryBucketClient } from './memory-bucket.js';

const uuid = '5f0e1d2c-3b4a-4968-8776-a5b4c3d2e1f0';
const head = { uuid, type: ContentType.DicomUntilPixelData };
const base: BucketStorageOptions = {
  rootPath: 'root',
  storageStructure: 'flat',
  encrypted: false,
  enableLegacyUnknownFiles: true,
};

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('BucketStorage', () => {
  it('stores under the C++ plugins’ name', async () => {
    const client = new MemoryBucketClient();
    const storage = new BucketStorage(client, { ...base, encrypted: true });
    await storage.create({ uuid, type: ContentType.Dicom }, 3, Readable.from([Buffer.from('abc')]));
    expect([...client.objects.keys()]).toEqual([`root/${uuid}.dcm.enc`]);
  });

  it('EnableLegacyUnknownFiles: reads a DicomUntilPixelData object from its .unk name when .dcm.head is missing', async () => {
    const client = new MemoryBucketClient();
    client.objects.set(`root/${uuid}.unk`, Buffer.from('old header'));
    const storage = new BucketStorage(client, base);
    expect(await text((await storage.read(head)).body)).toBe('old header');
    expect(await text(await storage.readRange(head, 4, 6))).toBe('header');
    expect(client.calls).toEqual([
      `get root/${uuid}.dcm.head`,
      `get root/${uuid}.unk`,
      `getRange root/${uuid}.dcm.head`,
      `getRange root/${uuid}.unk`,
    ]);
  });

  it('with encryption on, the legacy name is .unk.enc (as the C++ plugins)', async () => {
    const client = new MemoryBucketClient();
    client.objects.set(`root/${uuid}.unk.enc`, Buffer.from('x'));
    const storage = new BucketStorage(client, { ...base, encrypted: true });
    expect(await text((await storage.read(head)).body)).toBe('x');
    await storage.remove(head);
    expect(client.objects.size).toBe(0);
    expect(client.calls.slice(-2)).toEqual([
      `delete root/${uuid}.dcm.head.enc`,
      `delete root/${uuid}.unk.enc`,
    ]);
  });

  it('prefers the .dcm.head name when both exist', async () => {
    const client = new MemoryBucketClient();
    client.objects.set(`root/${uuid}.dcm.head`, Buffer.from('new'));
    client.objects.set(`root/${uuid}.unk`, Buffer.from('old'));
    expect(await text((await new BucketStorage(client, base).read(head)).body)).toBe('new');
  });

  it('without EnableLegacyUnknownFiles, never looks at .unk and reports the .dcm.head name', async () => {
    const client = new MemoryBucketClient();
    client.objects.set(`root/${uuid}.unk`, Buffer.from('old'));
    const storage = new BucketStorage(client, { ...base, enableLegacyUnknownFiles: false });
    await expect(storage.read(head)).rejects.toThrow(
      new RegExp(`object not found: root/${uuid}\\.dcm\\.head in memory`),
    );
    await storage.remove(head);
    expect(client.objects.has(`root/${uuid}.unk`)).toBe(true);
  });

  it('reports the first name when no candidate exists', async () => {
    const storage = new BucketStorage(new MemoryBucketClient(), base);
    const error = await storage.read(head).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ObjectNotFoundError);
    expect((error as ObjectNotFoundError).objectName).toBe(`root/${uuid}.dcm.head`);
  });

  it('stores nothing from a wrong-size body (the client checks the size as it copies)', async () => {
    const client = new MemoryBucketClient();
    const storage = new BucketStorage(client, base);
    await expect(
      storage.create({ uuid, type: ContentType.Dicom }, 2, Readable.from([Buffer.from('abc')])),
    ).rejects.toThrow(/body has 3 bytes, expected 2/);
    expect(client.objects.size).toBe(0);
  });
});
