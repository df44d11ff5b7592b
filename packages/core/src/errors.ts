/** Base class for every error this project reports to Orthanc or to an operator. */
export class ObjectStorageError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A configuration value is missing or invalid. The message names section, key, value and what is allowed. */
export class ConfigurationError extends ObjectStorageError {}

/** The object does not exist in the backend. */
export class ObjectNotFoundError extends ObjectStorageError {
  constructor(
    readonly objectName: string,
    where: string,
    options?: ErrorOptions,
  ) {
    super(`object not found: ${objectName} in ${where}`, options);
  }
}

/** A range read asked for bytes past the end of the object. */
export class RangeNotSatisfiableError extends ObjectStorageError {}

/** Stored bytes failed an integrity check (tag, MD5, size, format). Such bytes are never returned. */
export class IntegrityError extends ObjectStorageError {}

/** A key file or key set is unusable. */
export class KeyError extends ObjectStorageError {}

/**
 * A conditional write found the object changed or gone since its version was taken (HTTP 412 or
 * the provider's equivalent): nothing was written.
 */
export class PreconditionFailedError extends ObjectStorageError {}
