// Loaded by the conformance package's bounded-memory child (plain Node, no ts-jest): the built
// GCS client under core's storage stack, for the emulator (and encryption settings) given through IPC.
import { createObjectStorage, parseProviderSettings, silentLogger } from '@orthanc-object-storage/core';
import { createGcsBucketClient } from '../../dist/index.js';

export async function createStorage({ apiEndpoint, bucketName, encryption }) {
  const { settings } = parseProviderSettings('google', { GoogleCloudStorage: { BucketName: bucketName } });
  const google = { ...settings, encryption: encryption ?? undefined };
  const client = await createGcsBucketClient(google, { apiEndpoint, log: silentLogger });
  return createObjectStorage(google, client, silentLogger);
}
