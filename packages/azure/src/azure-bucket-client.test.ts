import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite, type StartedAzurite } from '@orthanc-object-storage/servers';
import {
  ByteBudget,
  ConfigurationError,
  IntegrityError,
  ObjectNotFoundError,
  RangeNotSatisfiableError,
  UploadBuffers,
  type AzureAccessTier,
} from '@orthanc-object-storage/core';
import { openAzureBucketClient, type AzureBucketClient } from './azure-bucket-client.js';
import { azureSettings, chunked, patterned, quietLog, readAll } from './__tests__/fixtures.js';

const KiB = 1024;

let azurite: StartedAzurite;
let client: AzureBucketClient;
/** Small blocks so multi-block uploads stay cheap: 64 KiB blocks, 3 in flight. */
let smallBlocks: AzureBucketClient;

beforeAll(async () => {
  azurite = await startAzurite();
  const settings = azureSettings({
    connectionString: azurite.connectionString,
    containerName: 'client-tests',
  });
  client = await openAzureBucketClient(settings, { log: quietLog });
  smallBlocks = await openAzureBucketClient(settings, {
    log: quietLog,
    tuning: { blockBytes: 64 * KiB, concurrency: 3 },
  });
});

afterAll(async () => {
  await azurite?.stop();
});

describe('AzureBucketClient against Azurite', () => {
  it.each([0, 1, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, 20 * 64 * KiB + 7])(
    'round-trips %i bytes (single put or staged blocks)',
    async (size) => {
      const data = patterned(size, size + 1);
      const name = `roundtrip/${size}.dcm`;
      await smallBlocks.put(name, size, chunked(data, 10_007));
      const read = await smallBlocks.get(name);
      expect(read.size).toBe(size);
      expect((await readAll(read.body)).equals(data)).toBe(true);
    },
  );

  it('stores the whole-object MD5 as Content-MD5, for block uploads too', async () => {
    const data = patterned(5 * 64 * KiB + 3, 9);
    await smallBlocks.put('md5/blocks', data.length, chunked(data));
    const properties = await smallBlocks.container.getBlobClient('md5/blocks').getProperties();
    const expected = createHash('md5').update(data).digest();
    expect(Buffer.from(properties.contentMD5 ?? []).equals(expected)).toBe(true);
    const blocks = await smallBlocks.container.getBlockBlobClient('md5/blocks').getBlockList('committed');
    expect(blocks.committedBlocks?.length).toBe(6);
  });

  it('fails a read whose bytes do not match the stored Content-MD5', async () => {
    const data = patterned(1000, 3);
    await client.put('md5/tampered', data.length, Readable.from([data]));
    const blob = client.container.getBlobClient('md5/tampered');
    await blob.setHTTPHeaders({ blobContentMD5: createHash('md5').update('something else').digest() });
    const read = await client.get('md5/tampered');
    await expect(readAll(read.body)).rejects.toThrow(IntegrityError);
  });

  it('never commits a blob whose body is shorter or longer than announced', async () => {
    const data = patterned(3 * 64 * KiB, 4);
    await expect(smallBlocks.put('short/blocks', data.length + 1, chunked(data))).rejects.toThrow(
      /upload of short\/blocks: the body has 196608 bytes instead of the announced 196609/,
    );
    await expect(smallBlocks.put('long/blocks', data.length - 1, chunked(data))).rejects.toThrow(
      /upload of long\/blocks: the body has more than the announced 196607 bytes/,
    );
    await expect(client.put('short/single', 11, Readable.from([Buffer.from('0123456789')]))).rejects.toThrow(
      /the body has 10 bytes instead of the announced 11/,
    );
    for (const name of ['short/blocks', 'long/blocks', 'short/single']) {
      expect(await client.container.getBlobClient(name).exists()).toBe(false);
    }
  });

  it('fails the upload when the source stream fails, and commits nothing', async () => {
    const failing = new Readable({
      read() {
        this.push(patterned(100 * KiB));
        this.destroy(new Error('disk went away'));
      },
    });
    await expect(smallBlocks.put('broken/source', 1024 * KiB, failing)).rejects.toThrow(/disk went away/);
    expect(await client.container.getBlobClient('broken/source').exists()).toBe(false);
  });

  it('holds at most its upload budget of block buffers across parallel uploads', async () => {
    const budget = new ByteBudget(4 * 64 * KiB);
    Object.assign(smallBlocks, { uploadBuffers: new UploadBuffers(64 * KiB, budget) });
    const objects = [0, 1, 2, 3].map((i) => patterned(10 * 64 * KiB + i, 100 + i));
    await Promise.all(objects.map((data, i) => smallBlocks.put(`pool/${i}`, data.length, chunked(data))));
    expect(budget.peakInUse).toBeGreaterThan(64 * KiB);
    expect(budget.peakInUse).toBeLessThanOrEqual(4 * 64 * KiB);
    expect(budget.waitCount).toBeGreaterThan(0);
    expect(budget.inUse).toBe(0);
    for (const [i, data] of objects.entries()) {
      expect((await readAll((await smallBlocks.get(`pool/${i}`)).body)).equals(data)).toBe(true);
    }
  });

  it('reads ranges with offset and count, across block boundaries', async () => {
    const data = patterned(4 * 64 * KiB, 5);
    await smallBlocks.put('range/object', data.length, chunked(data));
    for (const [offset, length] of [
      [0, 10],
      [64 * KiB - 5, 10],
      [100_000, 64 * KiB],
      [data.length - 1, 1],
      [0, data.length],
    ] as const) {
      const bytes = await readAll(await smallBlocks.getRange('range/object', offset, length));
      expect(bytes.equals(data.subarray(offset, offset + length))).toBe(true);
    }
    expect((await readAll(await smallBlocks.getRange('range/object', data.length, 0))).length).toBe(0);
  });

  it('refuses ranges past the end', async () => {
    const data = patterned(1000, 6);
    await client.put('range/small', data.length, Readable.from([data]));
    await expect(client.getRange('range/small', 990, 11)).rejects.toThrow(RangeNotSatisfiableError);
    await expect(client.getRange('range/small', 2000, 1)).rejects.toThrow(RangeNotSatisfiableError);
    await expect(client.getRange('range/small', 1001, 0)).rejects.toThrow(RangeNotSatisfiableError);
  });

  it('reports a missing blob as ObjectNotFoundError naming it, for reads and range reads', async () => {
    await expect(client.get('missing/blob.dcm')).rejects.toThrow(ObjectNotFoundError);
    await expect(client.get('missing/blob.dcm')).rejects.toThrow(
      /missing\/blob\.dcm in azure:\/\/client-tests/,
    );
    await expect(client.getRange('missing/blob.dcm', 0, 1)).rejects.toThrow(ObjectNotFoundError);
    await expect(client.getRange('missing/blob.dcm', 0, 0)).rejects.toThrow(ObjectNotFoundError);
  });

  it('removes idempotently', async () => {
    await client.put('remove/me', 3, Readable.from([Buffer.from('abc')]));
    await client.delete('remove/me');
    await client.delete('remove/me');
    await expect(client.get('remove/me')).rejects.toThrow(ObjectNotFoundError);
  });

  it.each<AzureAccessTier>(['Hot', 'Cool', 'Cold', 'Archive'])(
    'sets AccessTier %s on single puts and block uploads',
    async (tier) => {
      const tiered = await openAzureBucketClient(
        azureSettings({
          connectionString: azurite.connectionString,
          containerName: 'tiers',
          accessTier: tier,
        }),
        { log: quietLog, tuning: { blockBytes: 64 * KiB } },
      );
      await tiered.put(`tier/${tier}/small`, 10, Readable.from([patterned(10)]));
      await tiered.put(`tier/${tier}/large`, 3 * 64 * KiB, chunked(patterned(3 * 64 * KiB)));
      for (const name of [`tier/${tier}/small`, `tier/${tier}/large`]) {
        expect((await tiered.container.getBlobClient(name).getProperties()).accessTier).toBe(tier);
      }
    },
  );

  it('reports a read of an archived blob as "archived, rehydrate first"', async () => {
    const archive = await openAzureBucketClient(
      azureSettings({
        connectionString: azurite.connectionString,
        containerName: 'tiers',
        accessTier: 'Archive',
      }),
      { log: quietLog },
    );
    await archive.put('archived/object', 4, Readable.from([Buffer.from('cold')]));
    await expect(archive.get('archived/object')).rejects.toThrow(
      /archived\/object in azure:\/\/tiers .* is archived, rehydrate first/,
    );
    await expect(archive.getRange('archived/object', 0, 2)).rejects.toThrow(/archived, rehydrate first/);
  });
});

describe('opening the container', () => {
  it('creates a missing container, and accepts an existing one', async () => {
    const settings = azureSettings({
      connectionString: azurite.connectionString,
      containerName: 'created-at-start',
    });
    const first = await openAzureBucketClient(settings, { log: quietLog });
    expect(await first.container.exists()).toBe(true);
    await first.put('kept', 1, Readable.from([Buffer.from('k')]));
    const second = await openAzureBucketClient(settings, { log: quietLog });
    expect((await readAll((await second.get('kept')).body)).toString()).toBe('k');
  });

  it('with CreateContainerIfNotExists false, refuses a missing container by name', async () => {
    const settings = azureSettings({
      connectionString: azurite.connectionString,
      containerName: 'never-created',
      createContainerIfNotExists: false,
    });
    const opening = openAzureBucketClient(settings, { log: quietLog });
    await expect(opening).rejects.toThrow(ConfigurationError);
    await expect(openAzureBucketClient(settings, { log: quietLog })).rejects.toThrow(
      /AzureBlobStorage\.ContainerName: container "never-created" does not exist in storage account "devstoreaccount1" and CreateContainerIfNotExists is false/,
    );
    const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
    expect(await service.getContainerClient('never-created').exists()).toBe(false);
  });

  it('with CreateContainerIfNotExists false, uses an existing container', async () => {
    const settings = azureSettings({
      connectionString: azurite.connectionString,
      containerName: 'client-tests',
      createContainerIfNotExists: false,
    });
    const existing = await openAzureBucketClient(settings, { log: quietLog });
    await existing.put('existing/ok', 2, Readable.from([Buffer.from('ok')]));
    expect((await readAll((await existing.get('existing/ok')).body)).toString()).toBe('ok');
  });

  it('accepts a connection string with surrounding spaces, CR and LF', async () => {
    const padded = azureSettings({
      connectionString: `  ${azurite.connectionString}  \r\n`,
      containerName: 'padded',
    });
    const opened = await openAzureBucketClient(padded, { log: quietLog });
    await opened.put('padded/object', 1, Readable.from([Buffer.from('p')]));
    expect((await readAll((await opened.get('padded/object')).body)).toString()).toBe('p');
  });

  it('reports a wrong account key naming account and container, never the key', async () => {
    const wrongKey = Buffer.alloc(64, 7).toString('base64');
    const settings = azureSettings({
      connectionString: azurite.connectionString.replace(/AccountKey=[^;]+/, `AccountKey=${wrongKey}`),
      containerName: 'client-tests',
    });
    const failure = await openAzureBucketClient(settings, { log: quietLog }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConfigurationError);
    const message = (failure as Error).message;
    expect(message).toMatch(
      /access denied to container "client-tests" of storage account "devstoreaccount1" \(HTTP 403/,
    );
    expect(message).not.toContain(wrongKey);
    expect(message).not.toContain(azurite.accountKey);
    expect(JSON.stringify(failure)).not.toContain(wrongKey);
  });
});
