import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlockBlobClient, BlobHTTPHeaders } from '@azure/storage-blob';
import { forEachUploadPart, type UploadBuffer, type UploadBuffers } from '@orthanc-object-storage/core';

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
  /** Block buffers (`tuning.blockBytes`), reserved from the process-wide upload budget. */
  readonly buffers: UploadBuffers;
  readonly tuning: UploadTuning;
  /** Write only over the blob with this ETag (If-Match). */
  readonly ifMatch?: string;
}

/** Blocks of `tuning.blockBytes` (the last shorter), each handed to `consume`, which releases it. */
function forEachBlock(
  request: UploadRequest,
  consume: (block: UploadBuffer, index: number) => Promise<void>,
): Promise<void> {
  return forEachUploadPart(request.body, request.size, request.buffers, `upload of ${request.name}`, consume);
}

const md5 = (data: Buffer) => createHash('md5').update(data).digest();

/** Small object: one Put Blob with Content-MD5, which the service verifies and stores. */
async function putSingle(request: UploadRequest): Promise<void> {
  const { blob, tier } = request;
  let whole: UploadBuffer | undefined;
  try {
    await forEachBlock(request, async (block) => {
      whole = block;
    });
    const body = whole!.data;
    await blob.upload(body, body.length, {
      tier,
      ...(request.ifMatch === undefined ? {} : { conditions: { ifMatch: request.ifMatch } }),
      transactionalContentMD5: md5(body),
      blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
    });
  } finally {
    whole?.release();
  }
}

/**
 * Large object: blocks staged in parallel (each with its Content-MD5, verified by the service),
 * then committed with the whole object's MD5 stored as its Content-MD5 for readers to verify.
 * At most `concurrency` blocks of this upload are staged at once, within the process-wide upload budget.
 */
async function putBlocks(request: UploadRequest): Promise<void> {
  const { blob, tier, tuning } = request;
  // Same-length ids, unique per upload so two writers of one name never mix blocks.
  const uploadId = randomBytes(8).toString('hex');
  const blockIds: string[] = [];
  const whole = createHash('md5');
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;

  const stage = async (block: UploadBuffer, id: string) => {
    try {
      await blob.stageBlock(id, block.data, block.data.length, { transactionalContentMD5: md5(block.data) });
    } catch (error) {
      failure ??= error;
    } finally {
      // The request has been sent and answered: its bytes go back to the budget.
      block.release();
    }
  };

  try {
    await forEachBlock(request, async (block, index) => {
      if (failure !== undefined) {
        block.release();
        throw failure;
      }
      whole.update(block.data);
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
