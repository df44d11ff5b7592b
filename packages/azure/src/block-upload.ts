import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlockBlobClient, BlobHTTPHeaders } from '@azure/storage-blob';
import { ObjectStorageError } from '@orthanc-object-storage/core';
import type { BufferPool } from './buffer-pool.js';

export interface UploadTuning {
  /** Bytes per staged block; objects up to this size go in one Put Blob. */
  readonly blockBytes: number;
  /** Blocks of one upload staged at once. */
  readonly concurrency: number;
}

export interface UploadRequest {
  readonly blob: BlockBlobClient;
  readonly name: string;
  readonly size: number;
  readonly body: Readable;
  readonly tier: string | undefined;
  readonly pool: BufferPool;
  readonly tuning: UploadTuning;
  /** Write only over the blob with this ETag (If-Match). */
  readonly ifMatch?: string;
}

/**
 * Fill pooled buffers from `body`, one at a time, and hand each filled part to `consume`, which
 * must give the buffer back to the pool. Checks that exactly `size` bytes come.
 */
async function forEachBlock(
  request: UploadRequest,
  consume: (block: Buffer, owner: Buffer, index: number) => Promise<void>,
): Promise<void> {
  const { body, size, pool, tuning, name } = request;
  let index = 0;
  let total = 0;
  let owner: Buffer | undefined;
  let target = 0;
  let filled = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer | string>) {
      let data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      total += data.length;
      if (total > size)
        throw new ObjectStorageError(`upload of ${name}: body is longer than the ${size} bytes announced`);
      while (data.length > 0) {
        if (owner === undefined) {
          owner = await pool.acquire();
          target = Math.min(tuning.blockBytes, size - (total - data.length));
        }
        const take = Math.min(target - filled, data.length);
        data.copy(owner, filled, 0, take);
        filled += take;
        data = data.subarray(take);
        if (filled === target) {
          const full = owner;
          owner = undefined;
          filled = 0;
          await consume(full.subarray(0, target), full, index++);
        }
      }
    }
    if (total !== size)
      throw new ObjectStorageError(`upload of ${name}: body ended after ${total} of ${size} bytes`);
  } catch (error) {
    if (owner !== undefined) pool.release(owner);
    throw error;
  }
}

const md5 = (data: Buffer) => createHash('md5').update(data).digest();

/** Small object: one Put Blob with Content-MD5, which the service verifies and stores. */
async function putSingle(request: UploadRequest): Promise<void> {
  const { blob, pool, tier } = request;
  let content: Buffer | undefined;
  let owner: Buffer | undefined;
  try {
    await forEachBlock(request, async (block, buffer) => {
      content = block;
      owner = buffer;
    });
    const body = content ?? Buffer.alloc(0);
    await blob.upload(body, body.length, {
      tier,
      ...(request.ifMatch === undefined ? {} : { conditions: { ifMatch: request.ifMatch } }),
      transactionalContentMD5: md5(body),
      blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
    });
  } finally {
    if (owner !== undefined) pool.release(owner);
  }
}

/**
 * Large object: blocks staged in parallel (each with its Content-MD5, verified by the service),
 * then committed with the whole object's MD5 stored as its Content-MD5 for readers to verify.
 * At most `concurrency` blocks of this upload are staged at once, and never more buffers exist than the pool allows.
 */
async function putBlocks(request: UploadRequest): Promise<void> {
  const { blob, pool, tier, tuning } = request;
  // Same-length ids, unique per upload so two writers of one name never mix blocks.
  const uploadId = randomBytes(8).toString('hex');
  const blockIds: string[] = [];
  const whole = createHash('md5');
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;

  const stage = async (block: Buffer, owner: Buffer, id: string) => {
    try {
      await blob.stageBlock(id, block, block.length, { transactionalContentMD5: md5(block) });
    } catch (error) {
      failure ??= error;
    } finally {
      // The request has been sent and answered: the buffer is free for the next block.
      pool.release(owner);
    }
  };

  try {
    await forEachBlock(request, async (block, owner, index) => {
      if (failure !== undefined) {
        pool.release(owner);
        throw failure;
      }
      whole.update(block);
      const id = Buffer.from(`${uploadId}-${String(index).padStart(8, '0')}`).toString('base64');
      blockIds.push(id);
      const staged = stage(block, owner, id).finally(() => inFlight.delete(staged));
      inFlight.add(staged);
      if (inFlight.size >= tuning.concurrency) await Promise.race(inFlight);
    });
  } finally {
    await Promise.all(inFlight);
  }
  if (failure !== undefined) throw failure;
  const headers: BlobHTTPHeaders = {
    blobContentType: 'application/octet-stream',
    blobContentMD5: whole.digest(),
  };
  await blob.commitBlockList(blockIds, {
    tier,
    blobHTTPHeaders: headers,
    ...(request.ifMatch === undefined ? {} : { conditions: { ifMatch: request.ifMatch } }),
  });
}

/** Upload `size` bytes from `body`, streamed with bounded memory. */
export async function uploadBlob(request: UploadRequest): Promise<void> {
  if (request.size <= request.tuning.blockBytes) await putSingle(request);
  else await putBlocks(request);
}
