import {
  ObjectNotFoundError,
  ObjectStorageError,
  PreconditionFailedError,
  RangeNotSatisfiableError,
} from '@orthanc-object-storage/core';

export type GcsOperation = 'write' | 'read' | 'read range of' | 'remove' | 'check' | 'list';

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return code;
  const status = (error as { response?: { status?: unknown; statusCode?: unknown } } | null)?.response;
  const value = status?.status ?? status?.statusCode;
  return typeof value === 'number' ? value : undefined;
}

function messageOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // Bodies of error responses are JSON; keep messages one line and short.
  return message.replace(/\s+/g, ' ').slice(0, 300);
}

/**
 * Turn an SDK or HTTP failure into this project's errors. Auth and permission failures name the
 * bucket and what to check; a missing bucket is never reported as a missing object.
 */
export function toStorageError(
  error: unknown,
  bucket: string,
  operation: GcsOperation,
  name?: string,
): Error {
  if (error instanceof ObjectStorageError) return error;
  const status = statusOf(error);
  const message = messageOf(error);
  const target = name === undefined ? `bucket ${bucket}` : `${name} in bucket ${bucket}`;
  if (status === 404 && /bucket does not exist/i.test(message)) {
    return new ObjectStorageError(`GCS: bucket ${bucket} does not exist (${operation} ${target})`, {
      cause: error,
    });
  }
  if (status === 412) {
    return new PreconditionFailedError(
      `GCS: did not ${operation} ${target}: it changed or was removed since it was listed`,
      { cause: error },
    );
  }
  if (status === 404 && name !== undefined)
    return new ObjectNotFoundError(name, `gs://${bucket}`, { cause: error });
  if (status === 416) {
    return new RangeNotSatisfiableError(
      `GCS: ${operation} ${target}: range starts past the end of the object`,
      {
        cause: error,
      },
    );
  }
  if (status === 401 || /could not load the default credentials|invalid_grant|unauthorized/i.test(message)) {
    return new ObjectStorageError(
      `GCS: authentication failed for bucket ${bucket} (${operation} ${target}): check ServiceAccountFile, or the ` +
        `Application Default Credentials when it is unset (${message})`,
      { cause: error },
    );
  }
  if (status === 403) {
    return new ObjectStorageError(
      `GCS: permission denied on bucket ${bucket} (${operation} ${target}): the account needs ` +
        `storage.objects.create, get and delete on it, e.g. roles/storage.objectUser (${message})`,
      { cause: error },
    );
  }
  const http = status === undefined ? '' : ` (HTTP ${status})`;
  return new ObjectStorageError(`GCS: ${operation} ${target} failed${http}: ${message}`, { cause: error });
}
