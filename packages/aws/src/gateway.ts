// Gateway entry of libOrthancAwsS3Storage.so: the native shim starts this file.
import { runGateway } from '@orthanc-object-storage/core';
import { createS3BucketClient } from './s3-bucket-client.js';

await runGateway({
  provider: 'aws',
  async createBucketClient(settings, { log }) {
    const client = await createS3BucketClient(settings, { log });
    await client.checkAccess(log);
    return client;
  },
});
