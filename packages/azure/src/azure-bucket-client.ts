import { pipeline } from 'node:stream';
import { Readable } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import {
  ConfigurationError,
  ObjectNotFoundError,
  ObjectStorageError,
  PreconditionFailedError,
  RangeNotSatisfiableError,
  type AzureBlobSettings,
  type BucketClient,
  type ListedObject,
  type ListOptions,
  type Logger,
  type ObjectReadStream,
  type PutOptions,
  UploadBuffers,
} from '@orthanc-object-storage/core';
import type { TokenCredential } from '@azure/identity';
import { blobOperationError, startupError, type AzureTarget } from './azure-errors.js';
import { uploadBlob, type UploadTuning } from './block-upload.js';
import { openServiceClient, type AzureAuthKind } from './service-client.js';
import { VerifiedStream } from './verified-stream.js';

export interface AzureClientTuning extends UploadTuning {
  /** Resumed reads after a broken download, per read. */
  readonly readRetries: number;
}

export const DEFAULT_AZURE_TUNING: AzureClientTuning = {
  blockBytes: 4 * 1024 * 1024,
  concurrency: 4,
  readRetries: 5,
};

export interface AzureClientOptions {
  readonly log: Logger;
  readonly tuning?: Partial<AzureClientTuning>;
  /** Replace the `@azure/identity` default chain (AccountUrl only). */
  readonly credential?: TokenCredential;
}

/** A container of Azure Blob Storage seen as a BucketClient. Build it with `openAzureBucketClient`. */
export class AzureBucketClient implements BucketClient {
  readonly description: string;
  /** Block buffers, reserved from the process-wide upload budget. */
  readonly uploadBuffers: UploadBuffers;

  constructor(
    readonly container: ContainerClient,
    private readonly target: AzureTarget,
    private readonly settings: AzureBlobSettings,
    private readonly tuning: AzureClientTuning,
    readonly auth: AzureAuthKind,
  ) {
    this.description = target.description;
    this.uploadBuffers = new UploadBuffers(tuning.blockBytes);
  }

  async put(name: string, size: number, body: Readable, options: PutOptions = {}): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0) {
      body.destroy();
      throw new ObjectStorageError(`upload of ${name}: invalid size ${size}`);
    }
    try {
      await uploadBlob({
        blob: this.container.getBlockBlobClient(name),
        name,
        size,
        body,
        tier: this.settings.accessTier,
        buffers: this.uploadBuffers,
        tuning: this.tuning,
        ...(options.ifVersion === undefined ? {} : { ifMatch: options.ifVersion }),
      });
    } catch (error) {
      body.destroy();
      const mapped = blobOperationError(error, 'upload', name, this.target);
      if (options.ifVersion !== undefined && mapped instanceof ObjectNotFoundError) {
        throw new PreconditionFailedError(
          `upload of ${name} in ${this.description} not done: it was removed`,
        );
      }
      throw mapped;
    }
  }

  async get(name: string): Promise<ObjectReadStream> {
    let response;
    try {
      response = await this.container
        .getBlobClient(name)
        .download(0, undefined, { maxRetryRequests: this.tuning.readRetries });
    } catch (error) {
      throw blobOperationError(error, 'read', name, this.target);
    }
    const size = response.contentLength ?? 0;
    const body = this.verified(response.readableStreamBody, size, response.contentMD5, name);
    return { size, body };
  }

  async getRange(name: string, offset: number, length: number): Promise<Readable> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new RangeNotSatisfiableError(`range of ${name}: invalid offset ${offset} or length ${length}`);
    }
    const blob = this.container.getBlobClient(name);
    if (length === 0) {
      // The SDK reads "count 0" as "to the end": check existence and bounds instead.
      let size: number;
      try {
        size = (await blob.getProperties()).contentLength ?? 0;
      } catch (error) {
        throw blobOperationError(error, 'read range', name, this.target);
      }
      if (offset > size) throw this.rangeError(name, offset, length, size);
      return Readable.from([]);
    }
    let response;
    try {
      response = await blob.download(offset, length, { maxRetryRequests: this.tuning.readRetries });
    } catch (error) {
      throw blobOperationError(error, 'read range', name, this.target);
    }
    // Azure answers a range reaching past the end with the bytes that exist: refuse it whole.
    const received = response.contentLength ?? 0;
    if (received !== length) {
      response.readableStreamBody?.resume();
      const size = parseTotalSize(response.contentRange) ?? offset + received;
      throw this.rangeError(name, offset, length, size);
    }
    return this.verified(response.readableStreamBody, length, undefined, name);
  }

  async delete(name: string): Promise<void> {
    try {
      await this.container.getBlobClient(name).deleteIfExists({ deleteSnapshots: 'include' });
    } catch (error) {
      throw blobOperationError(error, 'delete', name, this.target);
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ListedObject> {
    try {
      for await (const page of this.container
        .listBlobsFlat({ prefix })
        .byPage({ maxPageSize: options.pageSize ?? 1000 })) {
        // Reads check the stored Content-MD5 already: no md5 to hand to `verify`.
        for (const blob of page.segment.blobItems) {
          yield {
            name: blob.name,
            size: blob.properties.contentLength ?? 0,
            version: blob.properties.etag ?? '',
          };
        }
      }
    } catch (error) {
      throw blobOperationError(error, 'list', `prefix "${prefix}"`, this.target);
    }
  }

  async close(): Promise<void> {
    // The SDK keeps no timers; sockets are released by the agent's keep-alive timeout.
  }

  private rangeError(name: string, offset: number, length: number, size: number): RangeNotSatisfiableError {
    return new RangeNotSatisfiableError(
      `range ${offset}+${length} of ${name} in ${this.description} is past its end (size ${size})`,
    );
  }

  private verified(
    source: NodeJS.ReadableStream | undefined,
    size: number,
    md5: Uint8Array | undefined,
    name: string,
  ): Readable {
    const check = new VerifiedStream(size, md5, `${name} in ${this.description}`);
    if (source === undefined) {
      check.end();
      return check;
    }
    pipeline(source, check, () => {
      /* errors reach the consumer through `check` */
    });
    return check;
  }
}

function parseTotalSize(contentRange: string | undefined): number | undefined {
  const match = contentRange === undefined ? null : /\/(\d+)$/.exec(contentRange);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/**
 * Open the container named in the settings: create it when `CreateContainerIfNotExists` is true
 * (an existing one is fine), or check that it exists. Throws ConfigurationError for a setting that cannot work.
 */
export async function openAzureBucketClient(
  settings: AzureBlobSettings,
  options: AzureClientOptions,
): Promise<AzureBucketClient> {
  const tuning: AzureClientTuning = { ...DEFAULT_AZURE_TUNING, ...options.tuning };
  const opened = await openServiceClient(settings, { credential: options.credential });
  const containerName = settings.containerName;
  const target: AzureTarget = {
    section: settings.section,
    accountName: opened.accountName,
    containerName,
    description: `azure://${containerName} (account ${opened.accountName}, endpoint ${opened.endpoint})`,
  };
  const container = opened.service.getContainerClient(containerName);
  let exists: boolean;
  try {
    if (settings.createContainerIfNotExists) {
      const created = await container.createIfNotExists();
      if (created.succeeded) options.log.info(`${settings.section}: created container "${containerName}"`);
      exists = true;
    } else {
      exists = await container.exists();
    }
  } catch (error) {
    throw startupError(error, target);
  }
  if (!exists) {
    throw new ConfigurationError(
      `${settings.section}.ContainerName: container "${containerName}" does not exist in storage account ` +
        `"${opened.accountName}" and CreateContainerIfNotExists is false; create the container or set ` +
        `CreateContainerIfNotExists to true`,
    );
  }
  options.log.info(`${settings.section}: using ${target.description}, authenticated by ${opened.auth}`);
  return new AzureBucketClient(container, target, settings, tuning, opened.auth);
}
