import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BucketClient, ListedObject } from '@orthanc-object-storage/core';

export type ConformanceBucketClientFactory = () => Promise<BucketClient>;

async function listAll(client: BucketClient, prefix: string, pageSize?: number): Promise<ListedObject[]> {
  const listed: ListedObject[] = [];
  for await (const object of client.list(prefix, pageSize === undefined ? {} : { pageSize })) {
    listed.push(object);
  }
  return listed.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Declare `BucketClient.list` conformance tests: prefix filtering, sizes, pagination, and an
 * object deleted between two listings. Call it at the top level of a jest test file.
 */
export function describeBucketListConformance(
  name: string,
  factory: ConformanceBucketClientFactory,
  /** Whether the provider's listing states each object's MD5 (S3 single-part ETags). */
  { listsMd5 }: { listsMd5: boolean },
): void {
  describe(`${name}: BucketClient.list`, () => {
    let client: BucketClient;
    const root = `list-${randomUUID()}`;
    const inside = ['a.dcm', 'b/c.json', 'b/d.dcm.enc', 'e', 'f.dcm'].map((n) => `${root}/in/${n}`);
    const outside = [`${root}/inside-not`, `${root}/out/x.dcm`];

    beforeAll(async () => {
      client = await factory();
      for (const [index, objectName] of [...inside, ...outside].entries()) {
        const body = Buffer.alloc(index * 10 + 1, index);
        await client.put(objectName, body.length, Readable.from([body]));
      }
    });
    afterAll(async () => {
      for (const objectName of [...inside, ...outside]) await client.delete(objectName);
      await client.close();
    });

    it('lists exactly the objects under a prefix, with their sizes', async () => {
      const listed = await listAll(client, `${root}/in/`);
      expect(listed.map((o) => [o.name, o.size])).toEqual(inside.map((n, index) => [n, index * 10 + 1]));
    });

    it('pages through a listing larger than one page', async () => {
      const listed = await listAll(client, `${root}/in/`, 2);
      expect(listed.map((o) => o.name)).toEqual(inside);
    });

    it(listsMd5 ? 'gives each object’s MD5' : 'gives no md5 (reads check the checksum)', async () => {
      const all = [...inside, ...outside];
      const listed = await listAll(client, `${root}/`);
      expect(listed.map((o) => o.name)).toEqual([...all].sort((a, b) => a.localeCompare(b)));
      for (const object of listed) {
        const index = all.indexOf(object.name);
        const md5 = createHash('md5')
          .update(Buffer.alloc(index * 10 + 1, index))
          .digest('hex');
        expect(object.md5).toBe(listsMd5 ? md5 : undefined);
      }
    });

    it('lists nothing under a prefix without objects, and no longer lists a deleted object', async () => {
      expect(await listAll(client, `${root}/none/`)).toEqual([]);
      const extra = `${root}/in/zz-deleted`;
      await client.put(extra, 1, Readable.from([Buffer.from('z')]));
      expect((await listAll(client, `${root}/in/`)).map((o) => o.name)).toContain(extra);
      await client.delete(extra);
      expect((await listAll(client, `${root}/in/`)).map((o) => o.name)).toEqual(inside);
    });
  });

  describeConditionalPut(name, factory);
}

const MiB = 1024 * 1024;

async function readAll(client: BucketClient, objectName: string): Promise<Buffer> {
  const { body } = await client.get(objectName);
  const parts: Buffer[] = [];
  for await (const part of body as AsyncIterable<Buffer>) parts.push(part);
  return Buffer.concat(parts);
}

/**
 * `put(..., { ifVersion })`, the swap of `reencrypt`: it writes over the listed version only, and
 * never brings back a deleted object. Small objects (one request) and 9 MiB ones (multipart, block
 * list or resumable upload, depending on the provider).
 */
function describeConditionalPut(name: string, factory: ConformanceBucketClientFactory): void {
  describe(`${name}: BucketClient.put with ifVersion`, () => {
    let client: BucketClient;
    const root = `conditional-${randomUUID()}`;
    beforeAll(async () => {
      client = await factory();
    });
    afterAll(async () => {
      for await (const object of client.list(`${root}/`)) await client.delete(object.name);
      await client.close();
    });

    const put = (objectName: string, data: Buffer, ifVersion?: string) =>
      client.put(
        objectName,
        data.length,
        Readable.from([data]),
        ifVersion === undefined ? {} : { ifVersion },
      );
    const versionOf = async (objectName: string) => {
      const [listed] = await listAll(client, objectName);
      expect(listed?.name).toBe(objectName);
      return listed!.version;
    };

    for (const size of [1000, 9 * MiB]) {
      it(`writes over the listed version only (${size} bytes)`, async () => {
        const objectName = `${root}/swap-${size}`;
        await put(objectName, Buffer.alloc(size, 1));
        const first = await versionOf(objectName);
        await put(objectName, Buffer.alloc(size, 2), first);
        expect((await readAll(client, objectName)).equals(Buffer.alloc(size, 2))).toBe(true);
        const second = await versionOf(objectName);
        expect(second).not.toBe(first);
        // The first version is gone: writing over it again must fail and change nothing.
        await expect(put(objectName, Buffer.alloc(size, 3), first)).rejects.toMatchObject({
          name: 'PreconditionFailedError',
        });
        expect((await readAll(client, objectName)).equals(Buffer.alloc(size, 2))).toBe(true);
        expect(await versionOf(objectName)).toBe(second);
      });

      it(`does not bring back a deleted object (${size} bytes)`, async () => {
        const objectName = `${root}/deleted-${size}`;
        await put(objectName, Buffer.alloc(size, 4));
        const version = await versionOf(objectName);
        await client.delete(objectName);
        await expect(put(objectName, Buffer.alloc(size, 5), version)).rejects.toMatchObject({
          name: 'PreconditionFailedError',
        });
        expect(await listAll(client, objectName)).toEqual([]);
      });
    }
  });
}
