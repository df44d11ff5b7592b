import {
  IntegrityError,
  ObjectNotFoundError,
  ObjectStorageError,
  PreconditionFailedError,
  RangeNotSatisfiableError,
} from '@orthanc-object-storage/core';

export type S3Operation = 'write' | 'read' | 'read a range of' | 'remove' | 'check access to' | 'list';

/** RGW and S3 error bodies: name = the S3 error code. RGW sends no message text at all. */
function codeOf(error: unknown): { name: string; status: number | undefined } {
  const e = error as { name?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: unknown } } | null;
  const name = typeof e?.Code === 'string' ? e.Code : typeof e?.name === 'string' ? e.name : 'Error';
  const status = e?.$metadata?.httpStatusCode;
  return { name, status: typeof status === 'number' ? status : undefined };
}

const BAD_CREDENTIALS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'InvalidClientTokenId',
]);

export function isBadCredentials(error: unknown): boolean {
  return (
    BAD_CREDENTIALS.has(codeOf(error).name) || (error as Error | null)?.name === 'CredentialsProviderError'
  );
}

/**
 * An SDK failure as this project's errors, naming the operation, the object and the bucket
 * (with its endpoint), never a key or a signature.
 */
export function toStorageError(error: unknown, bucket: string, operation: S3Operation, name?: string): Error {
  if (error instanceof ObjectStorageError) return error;
  const { name: code, status } = codeOf(error);
  const target = name === undefined ? bucket : `${name} in ${bucket}`;
  const options = { cause: error };
  if (code === 'NoSuchKey' || (status === 404 && code === 'NotFound' && name !== undefined)) {
    return new ObjectNotFoundError(name ?? '', bucket, options);
  }
  if (code === 'PreconditionFailed' || status === 412) {
    return new PreconditionFailedError(
      `S3: did not ${operation} ${target}: it changed or was removed since it was listed`,
      options,
    );
  }
  if (code === 'NoSuchBucket') {
    return new ObjectStorageError(`S3: cannot ${operation} ${target}: the bucket does not exist`, options);
  }
  if (code === 'InvalidObjectState') {
    return new ObjectStorageError(
      `S3: cannot ${operation} ${target}: the object is archived (GLACIER or DEEP_ARCHIVE storage class) ` +
        'and must be restored first (S3 RestoreObject) before it can be read',
      options,
    );
  }
  if (code === 'InvalidRange' || status === 416) {
    return new RangeNotSatisfiableError(
      `S3: cannot ${operation} ${target}: the range starts past the end`,
      options,
    );
  }
  if (code === 'BadDigest' || code === 'InvalidDigest') {
    return new IntegrityError(
      `S3: cannot ${operation} ${target}: the server received bytes whose MD5 does not match (${code}); nothing was stored`,
      options,
    );
  }
  if (code === 'CredentialsProviderError') {
    return new ObjectStorageError(
      `S3: cannot ${operation} ${target}: no credentials: set AccessKey and SecretKey, or provide them to ` +
        "the AWS SDK's default chain (environment, shared config files, web identity, ECS or EC2 role)",
      options,
    );
  }
  if (BAD_CREDENTIALS.has(code)) {
    return new ObjectStorageError(
      `S3: cannot ${operation} ${target}: the server rejected the credentials (${code}); check AccessKey and ` +
        'SecretKey (or the credentials of the default chain) and Region',
      options,
    );
  }
  if (code === 'AccessDenied' || status === 403) {
    return new ObjectStorageError(
      `S3: access denied: cannot ${operation} ${target} (${code}); the credentials need s3:PutObject, ` +
        's3:GetObject and s3:DeleteObject on the bucket (and s3:PutObjectTagging when Tags are set)',
      options,
    );
  }
  if (code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed' || status === 301) {
    return new ObjectStorageError(
      `S3: cannot ${operation} ${target}: the bucket is in another region than the configured Region (${code})`,
      options,
    );
  }
  const http = status === undefined ? '' : `, HTTP ${status}`;
  const message = error instanceof Error && error.message !== 'UnknownError' ? `: ${error.message}` : '';
  return new ObjectStorageError(`S3: cannot ${operation} ${target} (${code}${http})${message}`, options);
}
