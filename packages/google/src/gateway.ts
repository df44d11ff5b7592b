// Gateway entry of libOrthancGoogleCloudStorage.so: the native shim starts this file.
import { runGateway } from '@orthanc-object-storage/core';
import { createGcsBucketClient } from './gcs-bucket-client.js';

await runGateway({
  provider: 'google',
  async createBucketClient(settings, { log }) {
    const client = await createGcsBucketClient(settings, { log });
    await client.checkBucket(log);
    return client;
  },
});
