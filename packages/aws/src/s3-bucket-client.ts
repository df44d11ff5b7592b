import { randomUUID } from 'node:crypto';
import { pipeline, Readable, Transform } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandOutput,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  ConfigurationError,
  forEachUploadPart,
  reserveUploadMemory,
  UploadBuffers,
  type UploadBuffer,
  IntegrityError,
  ObjectNotFoundError,
  PreconditionFailedError,
  RangeNotSatisfiableError,
  type AwsS3Settings,
  type BucketClient,
  type ListedObject,
  type ListOptions,
  type Logger,
  type ObjectReadStream,
  type PutOptions,
} from '@orthanc-object-storage/core';
import { addContentMd5, md5Base64 } from './content-md5.js';
import { describeBucket, s3ClientConfig } from './s3-client-config.js';
import { isBadCredentials, toStorageError } from './s3-errors.js';

const MIN_PART_BYTES = 5 * 1024 * 1024;

/**
 * Orthanc's objects in one S3 bucket. Every body goes to the SDK as a Buffer with a Content-MD5
 * (whole object up to the part size, else each part of a lib-storage multipart upload), so no
 * request is sent as aws-chunked and the server checks every byte it stores. The memory those
 * bodies take is reserved first from the process-wide upload budget (`uploadMemoryBudget`).
 */
export class S3BucketClient implements BucketClient {
  readonly description: string;
  readonly client: S3Client;
  readonly partBytes: number;
  /** Whole small objects, reserved from the process-wide upload budget. */
  readonly uploadBuffers: UploadBuffers;

  constructor(
    readonly settings: AwsS3Settings,
    log: Logger,
  ) {
    this.description = describeBucket(settings);
    this.client = new S3Client(s3ClientConfig(settings, log));
    addContentMd5(this.client);
    this.partBytes = Math.max(MIN_PART_BYTES, settings.transferBufferBytes);
    this.uploadBuffers = new UploadBuffers(this.partBytes);
  }

  /** What every write carries: storage class and tags, applied by the same request. */
  private writeParams(name: string): PutObjectCommandInput {
    const tags = Object.entries(this.settings.tags)
      .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
      .join('&');
    return {
      Bucket: this.settings.bucketName,
      Key: name,
      ...(this.settings.storageClass === undefined ? {} : { StorageClass: this.settings.storageClass }),
      ...(tags === '' ? {} : { Tagging: tags }),
    };
  }

  async put(name: string, size: number, body: Readable, options: PutOptions = {}): Promise<void> {
    const what = `writing ${name} to ${this.description}`;
    try {
      if (size <= this.partBytes) await this.putSingle(name, size, body, what, options.ifVersion);
      else await this.putMultipart(name, size, body, options.ifVersion);
    } catch (error) {
      body.destroy();
      throw toStorageError(error, this.description, 'write', name);
    }
  }

  /** Up to one part: the whole object in one reserved buffer, one PutObject with its Content-MD5. */
  private async putSingle(
    name: string,
    size: number,
    body: Readable,
    what: string,
    ifVersion?: string,
  ): Promise<void> {
    let whole: UploadBuffer | undefined;
    try {
      await forEachUploadPart(body, size, this.uploadBuffers, what, async (part) => {
        whole = part;
      });
      const data = whole!.data;
      await this.client.send(
        new PutObjectCommand({
          ...this.writeParams(name),
          Body: data,
          ContentLength: size,
          ContentMD5: md5Base64(data),
          ...(ifVersion === undefined ? {} : { IfMatch: ifVersion }),
        }),
      );
    } finally {
      whole?.release();
    }
  }

  /**
   * lib-storage multipart: `TransferPoolSize` parts of `TransferBufferSize` in flight, aborted on
   * failure. It holds those parts, the one it gathers and that one's concatenated copy, so
   * `(queue + 2)` parts are reserved from the process-wide budget for the whole upload; when the
   * budget is smaller, fewer parts are in flight (at least one).
   */
  private async putMultipart(name: string, size: number, body: Readable, ifVersion?: string): Promise<void> {
    const budget = this.uploadBuffers.budget;
    const fitting = Math.floor(budget.limit / this.partBytes) - 2;
    const queueSize = Math.max(1, Math.min(this.settings.transferPoolSize, fitting));
    const release = await reserveUploadMemory(budget, (queueSize + 2) * this.partBytes);
    try {
      let seen = 0;
      const counted = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          seen += chunk.length;
          callback(
            seen > size ? new Error(`the body has more than the announced ${size} bytes`) : null,
            chunk,
          );
        },
        flush(callback) {
          callback(
            seen === size ? null : new Error(`the body has ${seen} bytes instead of the announced ${size}`),
          );
        },
      });
      const upload = new Upload({
        client: ifVersion === undefined ? this.client : this.checkingBeforeComplete(name, ifVersion),
        params: {
          ...this.writeParams(name),
          Body: pipeline(body, counted, () => {}),
          ContentLength: size,
          ...(ifVersion === undefined ? {} : { IfMatch: ifVersion }),
        },
        queueSize,
        partSize: this.partBytes,
        leavePartsOnError: false,
        // Some stores (RGW 16) ignore x-amz-tagging when a multipart upload starts: tag on completion too.
        tags: Object.entries(this.settings.tags).map(([Key, Value]) => ({ Key, Value })),
      });
      await upload.done();
    } finally {
      release();
    }
  }

  /**
   * The client for a conditional lib-storage upload: RGW 16 ignores If-Match on
   * CompleteMultipartUpload (AWS honours it), so the version is also checked just before it.
   */
  private checkingBeforeComplete(name: string, version: string): S3Client {
    const client = this.client;
    const send = (async (command: Parameters<S3Client['send']>[0], ...rest: unknown[]) => {
      if (command instanceof CompleteMultipartUploadCommand) await this.expectVersion(name, version);
      return (client.send as (...args: unknown[]) => Promise<unknown>).call(client, command, ...rest);
    }) as S3Client['send'];
    return Object.create(client, { send: { value: send } }) as S3Client;
  }

  /** Throws PreconditionFailedError unless `name` exists with ETag `version`. */
  private async expectVersion(name: string, version: string): Promise<void> {
    let etag: string | undefined;
    try {
      etag = (await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucketName, Key: name })))
        .ETag;
    } catch (error) {
      const mapped = toStorageError(error, this.description, 'write', name);
      if (!(mapped instanceof ObjectNotFoundError) && (error as { name?: string }).name !== 'NotFound') {
        throw mapped;
      }
    }
    if (unquoted(etag) !== version) {
      throw new PreconditionFailedError(
        `S3: did not write ${name} in ${this.description}: it changed or was removed since it was listed`,
      );
    }
  }

  private async getObject(name: string, operation: 'read' | 'read a range of', range?: string) {
    try {
      return await this.client.send(
        new GetObjectCommand({
          Bucket: this.settings.bucketName,
          Key: name,
          ...(range ? { Range: range } : {}),
        }),
      );
    } catch (error) {
      throw toStorageError(error, this.description, operation, name);
    }
  }

  async get(name: string): Promise<ObjectReadStream> {
    const output = await this.getObject(name, 'read');
    const body = bodyOf(output);
    const size = output.ContentLength;
    if (size === undefined || !Number.isSafeInteger(size) || size < 0) {
      body.destroy();
      throw new IntegrityError(
        `reading ${name} in ${this.description}: the response has no valid Content-Length`,
      );
    }
    return { size, body };
  }

  async getRange(name: string, offset: number, length: number): Promise<Readable> {
    const last = offset + length - 1;
    const output = await this.getObject(name, 'read a range of', `bytes=${offset}-${last}`);
    const body = bodyOf(output);
    const expected = `bytes ${offset}-${last}/`;
    if (output.ContentLength !== length || !output.ContentRange?.startsWith(expected)) {
      body.destroy();
      throw new RangeNotSatisfiableError(
        `reading range ${offset}+${length} of ${name} in ${this.description}: the object ends before ` +
          `(got ${output.ContentRange ?? 'no Content-Range'})`,
      );
    }
    return body;
  }

  async delete(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucketName, Key: name }));
    } catch (error) {
      const mapped = toStorageError(error, this.description, 'remove', name);
      if (!(mapped instanceof ObjectNotFoundError)) throw mapped;
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ListedObject> {
    const pages = paginateListObjectsV2(
      { client: this.client, pageSize: options.pageSize ?? 1000 },
      { Bucket: this.settings.bucketName, Prefix: prefix },
    );
    try {
      for await (const page of pages) {
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined) continue;
          // A single-part ETag is the MD5 of the bytes; a multipart one ends in "-<parts>".
          const etag = object.ETag?.replace(/"/g, '').toLowerCase();
          const md5 = etag !== undefined && /^[0-9a-f]{32}$/.test(etag) ? etag : undefined;
          yield {
            name: object.Key,
            size: object.Size ?? 0,
            version: unquoted(object.ETag),
            ...(md5 && { md5 }),
          };
        }
      }
    } catch (error) {
      throw toStorageError(error, `${this.description} (prefix "${prefix}")`, 'list');
    }
  }

  /**
   * Startup check: read a name that does not exist. Missing (or denied, when the policy has no
   * s3:ListBucket) is fine; rejected credentials or a missing bucket stop Orthanc with a clear error.
   */
  async checkAccess(log: Logger): Promise<void> {
    const probe = `orthanc-object-storage-probe-${randomUUID()}`;
    try {
      const output = await this.client.send(
        new GetObjectCommand({ Bucket: this.settings.bucketName, Key: probe }),
        { abortSignal: AbortSignal.timeout(Math.min(this.settings.connectionTimeoutSeconds, 30) * 1000) },
      );
      bodyOf(output).destroy();
    } catch (error) {
      const mapped = toStorageError(error, this.description, 'check access to');
      const code = (error as { name?: string }).name;
      if (mapped instanceof ObjectNotFoundError || code === 'NoSuchKey' || code === 'AccessDenied') return;
      if (
        isBadCredentials(error) ||
        ['NoSuchBucket', 'PermanentRedirect', 'AuthorizationHeaderMalformed'].includes(code ?? '')
      ) {
        throw new ConfigurationError(`AwsS3Storage: ${mapped.message}`, { cause: error });
      }
      log.warn(`AwsS3Storage: could not check access to ${this.description} at startup: ${mapped.message}`);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/**
 * The ETag as `ListedObject.version`: without its quotes, which RGW 16 needs in If-Match (it
 * compares the header with the bare value and answers 412 to the quoted form).
 */
function unquoted(etag: string | undefined): string {
  return (etag ?? '').replace(/"/g, '');
}

function bodyOf(output: GetObjectCommandOutput): Readable {
  const body = output.Body;
  if (body instanceof Readable) return body;
  throw new IntegrityError('S3: the response has no readable body');
}

/** Open the client for validated settings (the gateway then runs `checkAccess`). */
export async function createS3BucketClient(
  settings: AwsS3Settings,
  { log }: { log: Logger },
): Promise<S3BucketClient> {
  return new S3BucketClient(settings, log);
}
