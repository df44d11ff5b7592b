// Gateway entry of libOrthancAzureBlobStorage.so: the native shim starts `node gateway.js`.
import { runGateway } from '@orthanc-object-storage/core';
import { openAzureBucketClient } from './azure-bucket-client.js';

await runGateway({
  provider: 'azure',
  createBucketClient: (settings, context) => openAzureBucketClient(settings, { log: context.log }),
});
