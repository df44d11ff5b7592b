import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { parseProviderSettings, type AwsS3Settings } from '@orthanc-object-storage/core';
import type { Radosgw } from '@orthanc-object-storage/servers';
import { rgwClientConfig } from '@orthanc-object-storage/servers';

/** `AwsS3Storage` settings for the test RGW, through the real configuration parser. */
export function rgwSettings(
  rgw: Radosgw,
  bucket: string,
  extra: Record<string, unknown> = {},
): AwsS3Settings {
  const section = Object.fromEntries(
    Object.entries({
      BucketName: bucket,
      Region: rgw.region,
      AccessKey: rgw.accessKey,
      SecretKey: rgw.secretKey,
      Endpoint: rgw.endpoint,
      VirtualAddressing: false,
      ...extra,
    }).filter(([, value]) => value !== undefined), // `undefined` in `extra` removes a key
  );
  const { settings } = parseProviderSettings('aws', { AwsS3Storage: section });
  if (settings === undefined) throw new Error('AwsS3Storage section not parsed');
  return settings;
}

/** A plain SDK client, to look at what the server really stores. */
export function rawClient(rgw: Radosgw): S3Client {
  return new S3Client(rgwClientConfig(rgw));
}

export async function createBuckets(rgw: Radosgw, ...buckets: string[]): Promise<void> {
  const client = rawClient(rgw);
  for (const bucket of buckets) await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
}

// Test data helpers shared by every provider's tests.
export { patternBuffer as patterned, readAll } from '@orthanc-object-storage/conformance';
export { selfSignedCertificate } from '@orthanc-object-storage/servers';
