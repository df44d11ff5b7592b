// Loaded by the conformance package's bounded-memory child (plain Node, no ts-jest): the built
// azure client under core's storage stack, for the settings given through IPC.
import { createObjectStorage, parseProviderSettings, silentLogger } from '@orthanc-object-storage/core';
import { openAzureBucketClient } from '../../dist/index.js';

export async function createStorage({ connectionString, containerName }) {
  const { settings } = parseProviderSettings('azure', {
    AzureBlobStorage: { ConnectionString: connectionString, ContainerName: containerName },
  });
  const client = await openAzureBucketClient(settings, { log: silentLogger });
  return createObjectStorage(settings, client, silentLogger);
}
