// Loaded by the conformance package's bounded-memory child (plain Node, no ts-jest): the built
// S3 client under core's storage stack, for the RGW given through IPC (never argv).
import { createObjectStorage, parseProviderSettings, silentLogger } from '@orthanc-object-storage/core';
import { createS3BucketClient } from '../../dist/index.js';

export async function createStorage({ endpoint, region, accessKey, secretKey, bucket }) {
  const { settings } = parseProviderSettings('aws', {
    AwsS3Storage: {
      BucketName: bucket,
      Region: region,
      AccessKey: accessKey,
      SecretKey: secretKey,
      Endpoint: endpoint,
      VirtualAddressing: false,
    },
  });
  const client = await createS3BucketClient(settings, { log: silentLogger });
  return createObjectStorage(settings, client, silentLogger);
}
