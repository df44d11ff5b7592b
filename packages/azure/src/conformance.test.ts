// The shared storage conformance suite, and the bounded-memory round trip, against Azurite through
// core's storage stack (naming, A1 encryption off and on) over the azure BucketClient.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  describeBucketListConformance,
  describeStorageConformance,
  expectBoundedMemoryRoundTrip,
} from '@orthanc-object-storage/conformance';
import { createObjectStorage, parseProviderSettings, silentLogger } from '@orthanc-object-storage/core';
import { startAzurite, type StartedAzurite } from '@orthanc-object-storage/servers';
import { openAzureBucketClient } from './azure-bucket-client.js';

const MiB = 1024 * 1024;
let azurite: StartedAzurite;

beforeAll(async () => {
  azurite = await startAzurite();
});

afterAll(async () => {
  await azurite?.stop();
});

describeStorageConformance('Azure Blob Storage (Azurite)', async ({ encryption }) => {
  const { settings } = parseProviderSettings('azure', {
    AzureBlobStorage: {
      ConnectionString: azurite.connectionString,
      ContainerName: encryption === undefined ? 'conformance-plain' : 'conformance-encrypted',
      RootPath: 'orthanc/files',
    },
  });
  const azure = { ...settings!, encryption };
  return createObjectStorage(azure, await openAzureBucketClient(azure, { log: silentLogger }), silentLogger);
});

describeBucketListConformance(
  'Azure Blob Storage (Azurite)',
  async () => {
    const { settings } = parseProviderSettings('azure', {
      AzureBlobStorage: { ConnectionString: azurite.connectionString, ContainerName: 'conformance-plain' },
    });
    return openAzureBucketClient(settings!, { log: silentLogger });
  },
  { listsMd5: false },
);

describe('Azure Blob Storage (Azurite): memory', () => {
  const factoryModule = fileURLToPath(new URL('./__tests__/memory-storage-factory.mjs', import.meta.url));
  const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));

  it('round-trips a 256 MiB object with peak RSS under 320 MiB (so never held whole)', async () => {
    if (!existsSync(built)) throw new Error(`${built} is missing: run "pnpm build" in packages/azure first`);
    const result = await expectBoundedMemoryRoundTrip({
      factoryModule,
      factoryOptions: { connectionString: azurite.connectionString, containerName: 'memory' },
      sizeBytes: 256 * MiB,
      maxRssBytes: 320 * MiB,
    });
    console.log(
      JSON.stringify({
        azureBoundedMemoryRoundTrip: {
          sizeBytes: 256 * MiB,
          peakRssMiB: Math.round(result.peakRssBytes / MiB),
          createSeconds: result.createSeconds,
          readSeconds: result.readSeconds,
        },
      }),
    );
  });
});
