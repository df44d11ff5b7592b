import type { Readable } from 'node:stream';

/** Orthanc's `OrthancPluginContentType` values, as the plugin SDK passes them. */
export enum ContentType {
  Unknown = 0,
  Dicom = 1,
  DicomAsJson = 2,
  DicomUntilPixelData = 3,
}

/** An Orthanc attachment: its uuid and its content type. */
export interface ObjectKey {
  readonly uuid: string;
  readonly type: ContentType;
}

/**
 * A whole object being read: the size is known before the first byte.
 * The body's bytes are only good once it has ended without error: integrity checks
 * (MD5, GCM tag, size) run as it flows and fail the stream at the end if they fail.
 */
export interface ObjectReadStream {
  readonly size: number;
  readonly body: Readable;
}

/**
 * The storage contract that every backend implements, keyed by Orthanc's attachment uuid
 * and content type. Every method streams: no implementation holds a whole object.
 */
export interface ObjectStorage {
  /** Store an object of known size. `body` must yield exactly `size` bytes. */
  create(key: ObjectKey, size: number, body: Readable): Promise<void>;
  /** Read a whole object. Throws `ObjectNotFoundError` when it does not exist. */
  read(key: ObjectKey): Promise<ObjectReadStream>;
  /** Read `length` bytes from `offset`. Throws `RangeNotSatisfiableError` past the end. */
  readRange(key: ObjectKey, offset: number, length: number): Promise<Readable>;
  /** Remove an object. Removing a missing object succeeds. */
  remove(key: ObjectKey): Promise<void>;
  /** Whether `readRange` can return verified bytes without reading the whole object. */
  readonly supportsVerifiedRangeReads: boolean;
  /** Release connections and timers. */
  close(): Promise<void>;
}

/**
 * What a cloud provider implements: plain objects addressed by their full name in the
 * bucket or container. Naming, encryption and legacy fallbacks live above it, in core.
 */
export interface BucketClient {
  /** For messages: e.g. `s3://bucket (endpoint http://127.0.0.1:7480)`. Never holds a secret. */
  readonly description: string;
  /**
   * Fails, storing nothing, unless `body` yields exactly `size` bytes: each client checks where it
   * copies the bytes anyway, so no layer above counts them again.
   * With `ifVersion`, the write happens only if the object still exists with that version (from
   * `list`); otherwise it throws `PreconditionFailedError` and writes nothing.
   */
  put(name: string, size: number, body: Readable, options?: PutOptions): Promise<void>;
  /**
   * Throws `ObjectNotFoundError` when the object does not exist. The body yields exactly `size`
   * bytes or fails with an error (`IntegrityError` when the provider can tell): a short body never
   * ends cleanly.
   */
  get(name: string): Promise<ObjectReadStream>;
  /** Exactly `length` bytes or an error, as `get`; `RangeNotSatisfiableError` past the end. */
  getRange(name: string, offset: number, length: number): Promise<Readable>;
  /** Idempotent: deleting a missing object succeeds. */
  delete(name: string): Promise<void>;
  /**
   * Every object whose name starts with `prefix`, in the provider's order, one page per
   * request (never the whole listing in memory). `pageSize` (default 1000) is a hint.
   */
  list(prefix: string, options?: ListOptions): AsyncIterable<ListedObject>;
  close(): Promise<void>;
}

export interface PutOptions {
  /** `ListedObject.version` of the object this write replaces. */
  readonly ifVersion?: string;
}

export interface ListOptions {
  /** Objects per request, at most 1000 (every provider's maximum). */
  readonly pageSize?: number;
}

/** One object of a `BucketClient.list` page. */
export interface ListedObject {
  readonly name: string;
  readonly size: number;
  /**
   * Hex MD5 of the stored bytes when the provider's listing states it (S3 single-part ETag)
   * and its reads do not already check one: `verify` compares it. Otherwise undefined.
   */
  readonly md5?: string;
  /**
   * What changes whenever the object is rewritten (S3 and Azure ETag, GCS generation), for
   * `put(..., { ifVersion })`.
   */
  readonly version: string;
}
