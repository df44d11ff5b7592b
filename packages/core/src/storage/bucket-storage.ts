import { Readable } from 'node:stream';
import { ObjectNotFoundError, RangeNotSatisfiableError } from '../errors.js';
import type { BucketClient, ObjectKey, ObjectReadStream, ObjectStorage } from './contract.js';
import { assertValidRange, assertValidSize } from './exact-size.js';
import { HEAD_SIZE, readHead, type StoredObject } from './stored-object.js';
import { legacyUnknownObjectName, objectName, type NamingOptions } from './naming.js';

export interface BucketStorageOptions extends NamingOptions {
  /** `EnableLegacyUnknownFiles`: also look for DicomUntilPixelData objects under their old `.unk` name. */
  readonly enableLegacyUnknownFiles: boolean;
}

/**
 * The storage contract over a provider's BucketClient: object names as the C++ plugins give
 * them and the `.unk` fallback. Sizes in and out are checked by the client (see BucketClient).
 */
export class BucketStorage implements ObjectStorage {
  readonly supportsVerifiedRangeReads = true;

  constructor(
    readonly client: BucketClient,
    readonly options: BucketStorageOptions,
  ) {}

  /** Names to try, in order: the current one, then the legacy `.unk` one when enabled. */
  namesOf(key: ObjectKey): string[] {
    const names = [objectName(key, this.options)];
    if (this.options.enableLegacyUnknownFiles) {
      const legacy = legacyUnknownObjectName(key, this.options);
      if (legacy !== undefined) names.push(legacy);
    }
    return names;
  }

  async create(key: ObjectKey, size: number, body: Readable): Promise<void> {
    const name = objectName(key, this.options);
    assertValidSize(size, `creating ${name}`);
    // The client checks the size where it copies the bytes (see BucketClient.put).
    await this.client.put(name, size, body);
  }

  /** Run `attempt` on each candidate name until one exists; a miss everywhere reports the first name. */
  private async firstExisting<T>(key: ObjectKey, attempt: (name: string) => Promise<T>): Promise<T> {
    const names = this.namesOf(key);
    let firstMiss: ObjectNotFoundError | undefined;
    for (const name of names) {
      try {
        return await attempt(name);
      } catch (error) {
        if (!(error instanceof ObjectNotFoundError)) throw error;
        firstMiss ??= error;
      }
    }
    throw firstMiss ?? new ObjectNotFoundError(names[0] ?? key.uuid, this.client.description);
  }

  read(key: ObjectKey): Promise<ObjectReadStream> {
    return this.firstExisting(key, async (name) => {
      // Exactly `size` bytes or an error: the client's guarantee (see BucketClient.get).
      return this.client.get(name);
    });
  }

  readRange(key: ObjectKey, offset: number, length: number): Promise<Readable> {
    assertValidRange(offset, length, `reading a range of ${key.uuid}`);
    return this.firstExisting(key, async (name) => {
      if (length === 0) return this.emptyRange(name, offset);
      return this.client.getRange(name, offset, length);
    });
  }

  /** HTTP ranges cannot be empty: check the bounds with the object's size instead. */
  private async emptyRange(name: string, offset: number): Promise<Readable> {
    const { size, body } = await this.client.get(name);
    body.destroy();
    if (offset > size) {
      throw new RangeNotSatisfiableError(
        `range offset ${offset} length 0 is past the end of ${name} (${size} bytes)`,
      );
    }
    return Readable.from([], { objectMode: false });
  }

  /** Where the object is (the first candidate name that exists), its size and first bytes. */
  async inspect(key: ObjectKey): Promise<StoredObject | undefined> {
    for (const name of this.namesOf(key)) {
      try {
        const { size, body } = await this.client.get(name);
        const head = await readHead(body, HEAD_SIZE);
        return {
          location: name,
          locationKind: 'object-name',
          container: this.client.description,
          size,
          head,
        };
      } catch (error) {
        if (!(error instanceof ObjectNotFoundError)) throw error;
      }
    }
    return undefined;
  }

  /** Removes every candidate name, as the C++ plugins do (deleting a missing object succeeds). */
  async remove(key: ObjectKey): Promise<void> {
    for (const name of this.namesOf(key)) await this.client.delete(name);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
