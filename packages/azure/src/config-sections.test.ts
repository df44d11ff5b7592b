// Orthanc configuration sections, parsed by core as Orthanc hands them over, against Azurite.
import { Readable } from 'node:stream';
import { parseProviderSettings, type AzureBlobSettings } from '@orthanc-object-storage/core';
import { startAzurite, type StartedAzurite } from '@orthanc-object-storage/servers';
import { openAzureBucketClient } from './azure-bucket-client.js';
import { quietLog, readAll } from './__tests__/fixtures.js';

let azurite: StartedAzurite;

beforeAll(async () => {
  azurite = await startAzurite();
});

afterAll(async () => {
  await azurite?.stop();
});

async function roundTripThrough(settings: AzureBlobSettings): Promise<string> {
  const client = await openAzureBucketClient(settings, { log: quietLog });
  await client.put('config/object', 6, Readable.from([Buffer.from('orthan')]));
  const text = (await readAll((await client.get('config/object')).body)).toString();
  await client.delete('config/object');
  return text;
}

describe('AzureBlobStorage and BlobStorage sections against Azurite', () => {
  it('AzureBlobStorage with a connection string ending in spaces, CR and LF', async () => {
    const { settings } = parseProviderSettings('azure', {
      AzureBlobStorage: {
        ConnectionString: `${azurite.connectionString}  \r\n`,
        ContainerName: 'padded-config',
        AccessTier: 'Cool',
      },
    });
    expect(settings?.connectionString?.endsWith(' ')).toBe(false);
    expect(await roundTripThrough(settings!)).toBe('orthan');
    const client = await openAzureBucketClient(settings!, { log: quietLog });
    await client.put('tiered', 1, Readable.from([Buffer.from('t')]));
    expect((await client.container.getBlobClient('tiered').getProperties()).accessTier).toBe('Cool');
  });

  it('the legacy BlobStorage section (AccountName, AccountKey, ContainerName, and our BlobEndpoint)', async () => {
    const { settings, warnings } = parseProviderSettings('azure', {
      BlobStorage: {
        AccountName: azurite.accountName,
        AccountKey: azurite.accountKey,
        ContainerName: 'legacy-section',
        BlobEndpoint: azurite.blobEndpoint,
      },
    });
    expect(settings?.section).toBe('BlobStorage');
    expect(warnings.join(' ')).toMatch(/BlobStorage/);
    expect(await roundTripThrough(settings!)).toBe('orthan');
  });

  it('CreateContainerIfNotExists false in the section, with a missing container, stops startup', async () => {
    const { settings } = parseProviderSettings('azure', {
      AzureBlobStorage: {
        ConnectionString: azurite.connectionString,
        ContainerName: 'absent-container',
        CreateContainerIfNotExists: false,
      },
    });
    await expect(openAzureBucketClient(settings!, { log: quietLog })).rejects.toThrow(
      /container "absent-container" does not exist .* CreateContainerIfNotExists is false/,
    );
  });
});
