import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlockBlobClient, BlobHTTPHeaders } from '@azure/storage-blob';
import { ObjectStorageError } from '@orthanc-object-storage/core';
import type { BufferBudget } from './buffer-budget.js';

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
  readonly budget: BufferBudget;
  readonly tuning: UploadTuning;
}

/**
 * Fill fixed-size buffers from `body`, one at a time. A buffer is taken from the budget before
 * it is filled and handed to `consume`, which must give it back. Checks that exactly `size` bytes come.
 */
async function forEachBlock(
  request: UploadRequest,
  consume: (block: Buffer, index: number) => Promise<void>,
): Promise<void> {
  const { body, size, budget, tuning, name } = request;
  let index = 0;
  let total = 0;
  let block: Buffer | undefined;
  let filled = 0;
  const flush = async () => {
    if (block === undefined) return;
    const full = block.subarray(0, filled);
    block = undefined;
    filled = 0;
    await consume(full, index++);
  };
  try {
    for await (const chunk of body as AsyncIterable<Buffer | string>) {
      let data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      total += data.length;
      if (total > size)
        throw new ObjectStorageError(`upload of ${name}: body is longer than the ${size} bytes announced`);
      while (data.length > 0) {
        if (block === undefined) {
          await budget.acquire();
          block = Buffer.allocUnsafe(Math.min(tuning.blockBytes, size - (total - data.length)));
        }
        const take = Math.min(block.length - filled, data.length);
        data.copy(block, filled, 0, take);
        filled += take;
        data = data.subarray(take);
        if (filled === block.length) await flush();
      }
    }
    if (total !== size)
      throw new ObjectStorageError(`upload of ${name}: body ended after ${total} of ${size} bytes`);
  } catch (error) {
    if (block !== undefined) budget.release();
    throw error;
  }
}

const md5 = (data: Buffer) => createHash('md5').update(data).digest();

/** Small object: one Put Blob with Content-MD5, which the service verifies and stores. */
async function putSingle(request: UploadRequest): Promise<void> {
  const { blob, budget, tier } = request;
  let content: Buffer | undefined;
  try {
    await forEachBlock(request, async (block) => void (content = block));
    const body = content ?? Buffer.alloc(0);
    await blob.upload(body, body.length, {
      tier,
      transactionalContentMD5: md5(body),
      blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
    });
  } finally {
    if (content !== undefined) budget.release();
  }
}

/**
 * Large object: blocks staged in parallel (each with its Content-MD5, verified by the service),
 * then committed with the whole object's MD5 stored as its Content-MD5 for readers to verify.
 * At most `concurrency` blocks of this upload exist at once, and never more than the budget allows.
 */
async function putBlocks(request: UploadRequest): Promise<void> {
  const { blob, budget, tier, tuning } = request;
  // Same-length ids, unique per upload so two writers of one name never mix blocks.
  const uploadId = randomBytes(8).toString('hex');
  const blockIds: string[] = [];
  const whole = createHash('md5');
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;

  const stage = async (block: Buffer, id: string) => {
    try {
      await blob.stageBlock(id, block, block.length, { transactionalContentMD5: md5(block) });
    } catch (error) {
      failure ??= error;
    } finally {
      budget.release();
    }
  };

  try {
    await forEachBlock(request, async (block, index) => {
      if (failure !== undefined) {
        budget.release();
        throw failure;
      }
      whole.update(block);
      const id = Buffer.from(`${uploadId}-${String(index).padStart(8, '0')}`).toString('base64');
      blockIds.push(id);
      const staged = stage(block, id).finally(() => inFlight.delete(staged));
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
  await blob.commitBlockList(blockIds, { tier, blobHTTPHeaders: headers });
}

/** Upload `size` bytes from `body`, streamed with bounded memory. */
export async function uploadBlob(request: UploadRequest): Promise<void> {
  if (request.size <= request.tuning.blockBytes) await putSingle(request);
  else await putBlocks(request);
}
