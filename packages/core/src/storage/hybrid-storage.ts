import type { Readable } from 'node:stream';
import { ObjectNotFoundError, ObjectStorageError } from '../errors.js';
import type { Logger } from '../logging.js';
import type { ObjectKey, ObjectReadStream, ObjectStorage } from './contract.js';

export interface HybridStorageOptions {
  /** Where new objects go, and where reads look first. */
  readonly primary: ObjectStorage;
  /** Where reads look when the primary has no such object. */
  readonly secondary: ObjectStorage;
  /** For messages: e.g. `file system` and `object storage`. */
  readonly primaryName: string;
  readonly secondaryName: string;
  readonly log: Logger;
}

/**
 * Orthanc's HybridMode: write to the primary, read from the primary then the secondary,
 * remove from both. A primary failure other than "not found" still tries the secondary (as the
 * C++ plugins do) but is the error reported when the secondary has nothing either.
 */
export class HybridStorage implements ObjectStorage {
  readonly supportsVerifiedRangeReads: boolean;

  constructor(readonly options: HybridStorageOptions) {
    this.supportsVerifiedRangeReads =
      options.primary.supportsVerifiedRangeReads && options.secondary.supportsVerifiedRangeReads;
  }

  create(key: ObjectKey, size: number, body: Readable): Promise<void> {
    return this.options.primary.create(key, size, body);
  }

  /**
   * A miss on the primary that the secondary serves is hybrid mode working as intended (files not
   * moved yet): info, not a warning. Only a miss on both sides is reported, once, by the caller.
   */
  private async withFallback<T>(
    key: ObjectKey,
    operation: (storage: ObjectStorage) => Promise<T>,
  ): Promise<T> {
    const { primary, secondary, primaryName, secondaryName, log } = this.options;
    let primaryError: unknown;
    try {
      return await operation(primary);
    } catch (error) {
      primaryError = error;
      if (!(error instanceof ObjectNotFoundError)) {
        log.warn(
          `${primaryName}: reading ${key.uuid} failed (${(error as Error).message}); trying ${secondaryName}`,
        );
      }
    }
    let result: T;
    try {
      result = await operation(secondary);
    } catch (secondaryError) {
      if (!(primaryError instanceof ObjectNotFoundError)) throw primaryError;
      if (secondaryError instanceof ObjectNotFoundError) {
        throw new ObjectNotFoundError(key.uuid, `${primaryName} nor in ${secondaryName}`, {
          cause: secondaryError,
        });
      }
      throw secondaryError;
    }
    if (primaryError instanceof ObjectNotFoundError)
      log.info(`read ${key.uuid} from ${secondaryName} (not in ${primaryName})`);
    return result;
  }

  read(key: ObjectKey): Promise<ObjectReadStream> {
    return this.withFallback(key, (storage) => storage.read(key));
  }

  readRange(key: ObjectKey, offset: number, length: number): Promise<Readable> {
    return this.withFallback(key, (storage) => storage.readRange(key, offset, length));
  }

  /** Remove from both; both are attempted even when one fails. */
  async remove(key: ObjectKey): Promise<void> {
    const results = await Promise.allSettled([
      this.options.primary.remove(key),
      this.options.secondary.remove(key),
    ]);
    const failures = results.flatMap((result, index) =>
      result.status === 'rejected'
        ? [
            `${index === 0 ? this.options.primaryName : this.options.secondaryName}: ${(result.reason as Error).message}`,
          ]
        : [],
    );
    if (failures.length > 0) {
      throw new ObjectStorageError(`removing ${key.uuid} failed: ${failures.join('; ')}`);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.options.primary.close(), this.options.secondary.close()]);
  }
}
