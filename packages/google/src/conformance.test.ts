// The shared storage conformance suite against firebase-tools' Cloud Storage emulator, through
// core's storage stack (naming, A1 encryption off and on) over the GCS BucketClient.
import {
  describeBucketListConformance,
  describeStorageConformance,
} from '@orthanc-object-storage/conformance';
import { createObjectStorage, parseProviderSettings, silentLogger } from '@orthanc-object-storage/core';
import { startGcsEmulator, type StartedGcsEmulator } from '@orthanc-object-storage/servers';
import { createGcsBucketClient } from './gcs-bucket-client.js';

const PLAIN_BUCKET = 'conformance-plain';
const ENCRYPTED_BUCKET = 'conformance-encrypted';
let emulator: StartedGcsEmulator;

beforeAll(async () => {
  emulator = await startGcsEmulator({ buckets: [PLAIN_BUCKET, ENCRYPTED_BUCKET] });
});

afterAll(async () => {
  await emulator?.stop();
});

describeStorageConformance('Google Cloud Storage (emulator)', async ({ encryption }) => {
  const { settings } = parseProviderSettings('google', {
    GoogleCloudStorage: {
      BucketName: encryption === undefined ? PLAIN_BUCKET : ENCRYPTED_BUCKET,
      RootPath: 'orthanc/files',
    },
  });
  const google = { ...settings!, encryption };
  const client = await createGcsBucketClient(google, {
    apiEndpoint: emulator.apiEndpoint,
    log: silentLogger,
  });
  await client.checkBucket(silentLogger);
  return createObjectStorage(google, client, silentLogger);
});

describeBucketListConformance(
  'Google Cloud Storage (emulator)',
  async () => {
    const { settings } = parseProviderSettings('google', {
      GoogleCloudStorage: { BucketName: PLAIN_BUCKET },
    });
    return createGcsBucketClient(settings!, { apiEndpoint: emulator.apiEndpoint, log: silentLogger });
  },
  { listsMd5: false },
);
