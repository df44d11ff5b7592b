import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PassThrough, Readable, pipeline } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { IdempotencyStrategy, Storage, type Bucket, type StorageOptions } from '@google-cloud/storage';
import {
  forEachUploadPart,
  IntegrityError,
  ObjectStorageError,
  RangeNotSatisfiableError,
  reserveUploadMemory,
  silentLogger,
  UploadBuffers,
  type UploadBuffer,
  type BucketClient,
  type GoogleCloudSettings,
  type ListedObject,
  type ListOptions,
  type Logger,
  type ObjectReadStream,
  type PutOptions,
} from '@orthanc-object-storage/core';
import { toStorageError } from './gcs-errors.js';
import { ExactLengthStream, VerifyingStream, parseGoogHash } from './integrity.js';
import { loadServiceAccountFile } from './service-account.js';

const MiB = 1024 * 1024;
/** Objects up to this size are sent in one request; larger ones use a resumable upload. */
export const DEFAULT_SINGLE_REQUEST_MAX_BYTES = 8 * MiB;
/** Resumable upload chunk: the most one upload buffers (GCS wants a multiple of 256 KiB). */
export const DEFAULT_RESUMABLE_CHUNK_BYTES = 8 * MiB;
const CONTENT_TYPE = 'application/octet-stream';

type WritePrecondition = { preconditionOpts?: { ifGenerationMatch: string } };

export interface GcsBucketClientOptions {
  /**
   * Talk to this endpoint (e.g. the emulator `http://127.0.0.1:PORT`) instead of Cloud Storage.
   * For tests. The `STORAGE_EMULATOR_HOST` environment variable does the same. The SDK then
   * sends no credentials unless `authenticateEndpoint` is true.
   */
  readonly apiEndpoint?: string;
  readonly authenticateEndpoint?: boolean;
  readonly singleRequestMaxBytes?: number;
  readonly resumableChunkBytes?: number;
  readonly log?: Logger;
}

/** Where the client's credentials come from, for the startup log line (never a secret). */
export type GcsCredentialSource = 'service-account-file' | 'application-default';

/** A BucketClient for one Cloud Storage bucket. */
export class GcsBucketClient implements BucketClient {
  readonly description: string;
  /** Upload bodies, reserved from the process-wide upload budget. */
  readonly uploadBuffers: UploadBuffers;

  constructor(
    readonly storage: Storage,
    /** Same settings without the SDK's retries: its read-stream retry pipes into destroyed streams. */
    private readonly readStorage: Storage,
    readonly bucketName: string,
    readonly credentialSource: GcsCredentialSource,
    private readonly singleRequestMaxBytes: number,
    private readonly resumableChunkBytes: number,
  ) {
    this.uploadBuffers = new UploadBuffers(Math.max(singleRequestMaxBytes, resumableChunkBytes));
    const endpoint = storage.customEndpoint ? ` (endpoint ${storage.apiEndpoint})` : '';
    this.description = `gs://${bucketName}${endpoint}`;
  }

  private get bucket(): Bucket {
    return this.storage.bucket(this.bucketName);
  }

  /** Open a read stream and wait for its 2xx response, retrying transient failures before any byte. */
  private async openRead(
    name: string,
    options: { start?: number; end?: number },
  ): Promise<{ source: Readable; response: IncomingMessage }> {
    for (let attempt = 0; ; attempt++) {
      const source = this.readStorage
        .bucket(this.bucketName)
        .file(name)
        .createReadStream({
          ...options,
          decompress: false,
          ...(options.start === undefined && { validation: false }),
        });
      try {
        return { source, response: await responseOf(source) };
      } catch (error) {
        source.destroy();
        if (attempt >= READ_RETRIES || !isTransient(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt * (1 + Math.random())));
      }
    }
  }

  async put(name: string, size: number, body: Readable, options: PutOptions = {}): Promise<void> {
    checkCount('size', size);
    // ifGenerationMatch: GCS writes only over that generation of the object (412 otherwise).
    const precondition =
      options.ifVersion === undefined ? {} : { preconditionOpts: { ifGenerationMatch: options.ifVersion } };
    try {
      if (size <= this.singleRequestMaxBytes) await this.putSingleRequest(name, size, body, precondition);
      else await this.putResumable(name, size, body, precondition);
    } catch (error) {
      body.destroy();
      throw toStorageError(error, this.bucketName, 'write', name);
    }
  }

  /**
   * Small object: buffer it (a buffer reserved from the process-wide upload budget), send it
   * with its MD5 so GCS checks it.
   */
  private async putSingleRequest(
    name: string,
    size: number,
    body: Readable,
    precondition: WritePrecondition,
  ): Promise<void> {
    let whole: UploadBuffer | undefined;
    try {
      await forEachUploadPart(body, size, this.uploadBuffers, `write ${name}`, async (part) => {
        whole = part;
      });
      const data = whole!.data;
      const md5Hash = createHash('md5').update(data).digest('base64');
      await this.bucket.file(name).save(data, {
        resumable: false,
        validation: 'md5',
        metadata: { contentType: CONTENT_TYPE, md5Hash },
        ...precondition,
      });
    } finally {
      whole?.release();
    }
  }

  /**
   * Large object: resumable upload in chunks, streamed; the SDK checks the MD5 GCS computed. The
   * chunk the SDK buffers is reserved from the process-wide upload budget for the upload.
   */
  private async putResumable(
    name: string,
    size: number,
    body: Readable,
    precondition: WritePrecondition,
  ): Promise<void> {
    const release = await reserveUploadMemory(this.uploadBuffers.budget, this.resumableChunkBytes);
    try {
      const upload = this.bucket.file(name).createWriteStream({
        resumable: true,
        chunkSize: this.resumableChunkBytes,
        validation: 'md5',
        metadata: { contentType: CONTENT_TYPE, contentLength: size },
        ...precondition,
      });
      await pipelineAsync(body, new ExactLengthStream(`write ${name}`, size), upload);
    } finally {
      release();
    }
  }

  async get(name: string): Promise<ObjectReadStream> {
    let source: Readable;
    let response: IncomingMessage;
    try {
      ({ source, response } = await this.openRead(name, {}));
    } catch (error) {
      throw toStorageError(error, this.bucketName, 'read', name);
    }
    const headers = response.headers;
    const what = `read ${name} in gs://${this.bucketName}`;
    const encoding = headers['content-encoding'];
    if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
      source.destroy();
      throw new IntegrityError(
        `${what}: stored with Content-Encoding ${encoding}, which this plugin never writes`,
      );
    }
    const size = Number(headers['x-goog-stored-content-length'] ?? headers['content-length']);
    if (!Number.isSafeInteger(size) || size < 0) {
      source.destroy();
      throw new IntegrityError(`${what}: the response has no valid length`);
    }
    const hashes = parseGoogHash(headers['x-goog-hash']);
    if (hashes.md5 === undefined && hashes.crc32c === undefined) {
      source.destroy();
      throw new IntegrityError(
        `${what}: the response has no checksum (x-goog-hash) to verify the bytes against`,
      );
    }
    const verified = new VerifyingStream(what, size, hashes);
    pipeline(source, verified, () => {});
    return { size, body: verified };
  }

  async getRange(name: string, offset: number, length: number): Promise<Readable> {
    checkCount('offset', offset);
    checkCount('length', length);
    if (length === 0) return this.emptyRange(name, offset);
    const end = offset + length - 1;
    let source: Readable;
    let response: IncomingMessage;
    try {
      ({ source, response } = await this.openRead(name, { start: offset, end }));
    } catch (error) {
      throw toStorageError(error, this.bucketName, 'read range of', name);
    }
    const what = `read ${name} bytes ${offset}-${end} in gs://${this.bucketName}`;
    const contentRange = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(
      String(response.headers['content-range'] ?? ''),
    );
    if (response.statusCode !== 206 || contentRange === null) {
      source.destroy();
      throw new IntegrityError(
        `${what}: the server did not answer with the range (HTTP ${response.statusCode})`,
      );
    }
    const [first, last, total] = [Number(contentRange[1]), Number(contentRange[2]), contentRange[3]];
    if (first !== offset) {
      source.destroy();
      throw new IntegrityError(`${what}: the server sent bytes from ${first}`);
    }
    if (last !== end) {
      source.destroy();
      throw new RangeNotSatisfiableError(`${what}: the object has only ${total} bytes`);
    }
    const exact = new VerifyingStream(what, length, {});
    pipeline(source, exact, () => {});
    return exact;
  }

  private async emptyRange(name: string, offset: number): Promise<Readable> {
    let size: number;
    try {
      const [metadata] = await this.bucket.file(name).getMetadata();
      size = Number(metadata.size);
    } catch (error) {
      throw toStorageError(error, this.bucketName, 'read range of', name);
    }
    if (offset > size) {
      throw new RangeNotSatisfiableError(
        `read ${name} in gs://${this.bucketName}: offset ${offset} is past its ${size} bytes`,
      );
    }
    return Readable.from([]);
  }

  async delete(name: string): Promise<void> {
    try {
      await this.bucket.file(name).delete({ ignoreNotFound: true });
    } catch (error) {
      throw toStorageError(error, this.bucketName, 'remove', name);
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ListedObject> {
    let pageToken: string | undefined;
    do {
      let files;
      let next: { pageToken?: string } | null | undefined;
      try {
        [files, next] = await this.bucket.getFiles({
          prefix,
          autoPaginate: false,
          maxResults: options.pageSize ?? 1000,
          pageToken,
        });
      } catch (error) {
        throw toStorageError(error, `${this.bucketName} (prefix "${prefix}")`, 'list');
      }
      // Reads check GCS's own crc32c/md5 already: no md5 to hand to `verify`.
      for (const file of files) {
        const version = String(file.metadata.generation ?? '');
        yield { name: file.name, size: Number(file.metadata.size ?? 0), version };
      }
      pageToken = next?.pageToken;
    } while (pageToken !== undefined);
  }

  /** Startup check: the bucket exists and the credentials work. 403 (no storage.buckets.get) only warns. */
  async checkBucket(log: Logger): Promise<void> {
    try {
      await this.bucket.getMetadata();
    } catch (error) {
      const mapped = toStorageError(error, this.bucketName, 'check');
      const status = (error as { code?: unknown }).code;
      if (status === 403) {
        log.warn(
          `${mapped.message}; cannot check the bucket at startup (fine if the role lacks storage.buckets.get)`,
        );
        return;
      }
      throw mapped;
    }
  }

  async close(): Promise<void> {
    // The SDK keeps no timers; its keep-alive sockets close with the process.
  }
}

/** Resolve with the HTTP response once it is 2xx; reject with the SDK's error otherwise. */
function responseOf(stream: PassThrough | Readable): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    stream.once('error', onError);
    stream.once('response', (response: IncomingMessage) => {
      // The response is the HTTP body stream itself, which the SDK's layers (node-fetch,
      // teeny-request, the storage read stream) and our pipeline give 11 'error' and 'close'
      // listeners: one over Node's leak warning threshold, logged for every read otherwise.
      response.setMaxListeners(RESPONSE_LISTENERS);
      const status = response.statusCode ?? 0;
      // The error listener stays: a late error must not be unhandled before the caller pipes.
      if (status >= 200 && status < 300) resolve(response);
      // Otherwise the SDK destroys the stream with an error carrying the response body.
    });
    // The SDK starts the request on the first read; the data waits in the stream's buffer.
    stream.read(0);
  });
}

const READ_RETRIES = 3;
/** Listeners the read path puts on one HTTP response stream, with room to spare (a leak still warns). */
const RESPONSE_LISTENERS = 20;
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number'
    ? TRANSIENT_STATUS.has(code)
    : typeof code === 'string' && TRANSIENT_CODES.has(code);
}

function checkCount(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ObjectStorageError(`GCS: ${what} must be a non-negative integer, got ${value}`);
  }
}

/**
 * Open the client for `GoogleCloudStorage` settings: the key of `ServiceAccountFile` when set
 * (ConfigurationError naming the path if unusable), otherwise Application Default Credentials
 * (GOOGLE_APPLICATION_CREDENTIALS, gcloud's ADC file, or the metadata server: GKE workload identity).
 */
export async function createGcsBucketClient(
  settings: GoogleCloudSettings,
  options: GcsBucketClientOptions = {},
): Promise<GcsBucketClient> {
  const log = options.log ?? silentLogger;
  const storageOptions: StorageOptions = {
    // Every write of ours is a whole object under a unique name: repeating it is harmless.
    retryOptions: { autoRetry: true, maxRetries: 3, idempotencyStrategy: IdempotencyStrategy.RetryAlways },
  };
  let credentialSource: GcsCredentialSource = 'application-default';
  let how = 'Application Default Credentials';
  if (settings.serviceAccountFile !== undefined) {
    const key = await loadServiceAccountFile(settings.section, settings.serviceAccountFile);
    how = `service account ${key.client_email} (${settings.serviceAccountFile})`;
    storageOptions.credentials = key;
    if (key.project_id !== undefined) storageOptions.projectId = key.project_id;
    credentialSource = 'service-account-file';
  }
  if (options.apiEndpoint !== undefined) {
    storageOptions.apiEndpoint = options.apiEndpoint;
    storageOptions.useAuthWithCustomEndpoint = options.authenticateEndpoint ?? false;
  }
  const chunk = options.resumableChunkBytes ?? DEFAULT_RESUMABLE_CHUNK_BYTES;
  if (chunk % (256 * 1024) !== 0 || chunk <= 0) {
    throw new ObjectStorageError(
      `GCS: resumable chunk size must be a positive multiple of 256 KiB, got ${chunk}`,
    );
  }
  const client = new GcsBucketClient(
    new Storage(storageOptions),
    new Storage({ ...storageOptions, retryOptions: { autoRetry: false } }),
    settings.bucketName,
    credentialSource,
    options.singleRequestMaxBytes ?? DEFAULT_SINGLE_REQUEST_MAX_BYTES,
    chunk,
  );
  log.info(`GoogleCloudStorage: ${client.description} with ${how}`);
  return client;
}
