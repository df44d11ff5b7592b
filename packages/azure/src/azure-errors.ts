import {
  ConfigurationError,
  ObjectNotFoundError,
  ObjectStorageError,
  PreconditionFailedError,
  RangeNotSatisfiableError,
} from '@orthanc-object-storage/core';

/** Where a call went, for messages. Holds no secret. */
export interface AzureTarget {
  readonly section: string;
  readonly accountName: string;
  readonly containerName: string;
  /** `azure://container (account …, endpoint …)` */
  readonly description: string;
}

interface AzureFailure {
  readonly name: string | undefined;
  readonly statusCode: number | undefined;
  readonly errorCode: string | undefined;
  readonly detail: string;
}

/** Status, Azure error code and the first line of the message of a RestError or anything else. */
export function inspectFailure(error: unknown): AzureFailure {
  const record = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const statusCode = typeof record.statusCode === 'number' ? record.statusCode : undefined;
  const details = record.details as Record<string, unknown> | undefined;
  const headerCode =
    typeof details?.errorCode === 'string'
      ? details.errorCode
      : typeof record.code === 'string'
        ? record.code
        : undefined;
  const message = error instanceof Error ? error.message : String(error);
  // Azure's messages carry RequestId/Time lines; the first line says what happened.
  const detail = message.split('\n')[0]?.trim() ?? '';
  const name = typeof record.name === 'string' ? record.name : undefined;
  return { name, statusCode, errorCode: headerCode, detail };
}

function httpSummary(failure: AzureFailure): string {
  const parts = [
    failure.statusCode === undefined ? undefined : `HTTP ${failure.statusCode}`,
    failure.errorCode,
    failure.detail === '' ? undefined : failure.detail,
  ].filter((part) => part !== undefined);
  return parts.join(' ');
}

function isAuthFailure(failure: AzureFailure): boolean {
  return (
    failure.statusCode === 401 ||
    failure.statusCode === 403 ||
    // @azure/identity's failures to get a token.
    failure.name === 'CredentialUnavailableError' ||
    failure.name === 'AuthenticationError' ||
    failure.name === 'AggregateAuthenticationError' ||
    failure.name === 'AuthenticationRequiredError'
  );
}

function authMessage(target: AzureTarget, failure: AzureFailure): string {
  return (
    `${target.section}: access denied to container "${target.containerName}" of storage account ` +
    `"${target.accountName}" (${httpSummary(failure)}); check the account key or SAS in ConnectionString, ` +
    `or the Azure AD identity's role on the container (e.g. Storage Blob Data Contributor)`
  );
}

/** Translate a failure of one blob operation into this project's errors. Never carries the RestError (it holds request headers). */
export function blobOperationError(
  error: unknown,
  operation: string,
  blobName: string,
  target: AzureTarget,
): ObjectStorageError {
  if (error instanceof ObjectStorageError) return error;
  const failure = inspectFailure(error);
  if (failure.statusCode === 404 && failure.errorCode === 'ContainerNotFound') {
    return new ObjectStorageError(
      `${target.section}: container "${target.containerName}" does not exist in storage account "${target.accountName}" (${operation} ${blobName})`,
    );
  }
  if (failure.statusCode === 412) {
    return new PreconditionFailedError(
      `azure ${operation} of ${blobName} in ${target.description} not done: it changed or was removed since it was listed`,
    );
  }
  // Azurite answers a HEAD/GET on a missing blob with 404 and an empty message: branch on the status.
  if (failure.statusCode === 404) return new ObjectNotFoundError(blobName, target.description);
  if (failure.statusCode === 409 && failure.errorCode === 'BlobArchived') {
    return new ObjectStorageError(
      `blob ${blobName} in ${target.description} is archived, rehydrate first: ` +
        `set its access tier to Hot, Cool or Cold and wait for the rehydration to finish`,
    );
  }
  if (failure.statusCode === 416 || failure.errorCode === 'InvalidRange') {
    return new RangeNotSatisfiableError(`range not satisfiable reading ${blobName} in ${target.description}`);
  }
  if (isAuthFailure(failure))
    return new ObjectStorageError(`${authMessage(target, failure)} (${operation} ${blobName})`);
  return new ObjectStorageError(
    `azure ${operation} of ${blobName} in ${target.description} failed: ${httpSummary(failure)}`,
  );
}

/** Translate a failure while opening the container at startup. Auth failures are configuration errors. */
export function startupError(error: unknown, target: AzureTarget): ObjectStorageError {
  if (error instanceof ObjectStorageError) return error;
  const failure = inspectFailure(error);
  if (isAuthFailure(failure)) return new ConfigurationError(authMessage(target, failure));
  return new ObjectStorageError(
    `${target.section}: could not open container "${target.containerName}" in ${target.description}: ${httpSummary(failure)}`,
  );
}
