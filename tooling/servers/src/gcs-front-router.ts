// The front router of the GCS emulator child: what the firebase-tools storage emulator lacks
// and @google-cloud/storage uses. Bucket create/get/delete, `/storage/v1` paths, chunked
// resumable uploads (appended to disk, no size limit), and media downloads streamed from disk
// with GCS's headers (x-goog-hash, x-goog-stored-*) and a real 416 for unsatisfiable ranges.
// Everything else goes to the emulator's own express app.
import fs from 'node:fs';
import type http from 'node:http';

/** The parts of firebase-tools' StoredFileMetadata used here. */
export interface StoredObjectMetadata {
  readonly name: string;
  readonly bucket: string;
  readonly size: number;
  readonly md5Hash: string;
  /** Decimal string of the unsigned CRC32C. */
  readonly crc32c: string;
  readonly generation: number;
  readonly metageneration: number;
  readonly contentType?: string;
  readonly etag: string;
}

export interface ResumableUpload {
  readonly id: string;
  readonly size: number;
  readonly status: string;
}

/** The internals of firebase-tools 15.34.2's StorageEmulator this router relies on (pinned version). */
export interface GcsEmulatorInternals {
  readonly adminStorageLayer: {
    createBucket(id: string): void;
    getMetadata(bucket: string, object: string): StoredObjectMetadata | undefined;
    uploadObject(upload: ResumableUpload): Promise<StoredObjectMetadata>;
    deleteFile(bucket: string, object: string): boolean;
    path(bucket: string, object: string): string;
    readonly _buckets: Map<string, unknown>;
    readonly _files: Map<string, { readonly metadata: StoredObjectMetadata }>;
    readonly _persistence: { getDiskPath(name: string): string };
  };
  readonly uploadService: {
    startResumableUpload(request: {
      bucketId: string;
      objectId: string;
      metadata: Record<string, unknown>;
      authorization: string | undefined;
    }): ResumableUpload;
    continueResumableUpload(id: string, data: Buffer): ResumableUpload;
    finalizeResumableUpload(id: string): ResumableUpload;
    cancelResumableUpload(id: string): ResumableUpload;
    getResumableUpload(id: string): ResumableUpload;
  };
}

export interface FrontRouterOptions {
  /** When set, every request must carry `Authorization: Bearer <token>` (else 401), like GCS. */
  readonly requiredBearerToken: string | undefined;
  /** Buckets that answer 403 to everything: lets tests see a permission failure. */
  readonly forbiddenBuckets: ReadonlySet<string>;
  /** The JSON object resource for stored metadata (firebase-tools' CloudStorageObjectMetadata). */
  readonly toObjectResource: (metadata: StoredObjectMetadata) => unknown;
}

type Next = () => void;

interface Session {
  readonly bucket: string;
  readonly name: string;
  /** From X-Upload-Content-Length or a Content-Range total. */
  total: number | undefined;
  resource: unknown;
}

export function createFrontRouter(
  emulator: GcsEmulatorInternals,
  options: FrontRouterOptions,
): (req: http.IncomingMessage, res: http.ServerResponse, next: Next) => Promise<void> {
  const layer = emulator.adminStorageLayer;
  const uploads = emulator.uploadService;
  const sessions = new Map<string, Session>();
  const unavailable = new Set<string>();

  return async (req, res, next) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';

    // Test control (loopback only): make one bucket answer 503, as during an outage, or bring it back.
    if (url.pathname === '/_oos/unavailable' && method === 'POST') {
      const bucket = url.searchParams.get('bucket') ?? '';
      if (url.searchParams.get('on') === '1') unavailable.add(bucket);
      else unavailable.delete(bucket);
      res.writeHead(204).end();
      return;
    }

    if (options.requiredBearerToken !== undefined) {
      if (req.headers.authorization !== `Bearer ${options.requiredBearerToken}`) {
        return sendError(res, 401, 'Invalid Credentials', 'authError');
      }
    }

    // `/storage/v1/b/...` (apiEndpoint) and `/b/...` (STORAGE_EMULATOR_HOST) are the same API.
    let pathname = url.pathname;
    if (pathname.startsWith('/storage/v1/')) pathname = pathname.slice('/storage/v1'.length);
    const isDownload = pathname.startsWith('/download/storage/v1/');
    if (isDownload) pathname = pathname.slice('/download/storage/v1'.length);
    const isUpload = pathname.startsWith('/upload/storage/v1/');
    const apiPath = isUpload ? pathname.slice('/upload/storage/v1'.length) : pathname;

    if (apiPath === '/b' && method === 'POST' && !isUpload) {
      const body = JSON.parse((await readSmallBody(req)).toString('utf8') || '{}') as { name?: string };
      if (typeof body.name !== 'string' || body.name === '')
        return sendError(res, 400, 'bucket name required');
      if (layer._buckets.has(body.name)) {
        return sendError(
          res,
          409,
          'Your previous request to create the named bucket succeeded and you already own it.',
          'conflict',
        );
      }
      layer.createBucket(body.name);
      return sendJson(res, 200, bucketResource(body.name));
    }

    const match = /^\/b\/([^/]+)(\/.*)?$/.exec(apiPath);
    if (match === null) {
      req.url = pathname + url.search;
      return next();
    }
    const bucket = decodeURIComponent(match[1] ?? '');
    const rest = match[2] ?? '';
    if (options.forbiddenBuckets.has(bucket)) {
      return sendError(
        res,
        403,
        `caller does not have storage.objects access to the Google Cloud Storage bucket ${bucket}. Permission denied on resource (or it may not exist).`,
        'forbidden',
      );
    }
    if (unavailable.has(bucket)) {
      await drain(req);
      return sendError(res, 503, 'Service unavailable (outage simulated by the test)', 'backendError');
    }
    if (!layer._buckets.has(bucket)) {
      return sendError(res, 404, 'The specified bucket does not exist.', 'notFound');
    }

    if (rest === '' && !isUpload) {
      if (method === 'GET') return sendJson(res, 200, bucketResource(bucket));
      if (method === 'DELETE') {
        for (const file of layer._files.values()) {
          if (file.metadata.bucket === bucket)
            return sendError(res, 409, 'The bucket you tried to delete is not empty.', 'conflict');
        }
        layer._buckets.delete(bucket);
        res.writeHead(204).end();
        return;
      }
    }

    if (isUpload && rest === '/o') {
      const uploadId = url.searchParams.get('upload_id');
      // GCS's write precondition, which the emulator ignores: the object must be at that generation
      // (0: must not exist), else 412 and nothing is written. Checked when the upload starts.
      const ifGenerationMatch = url.searchParams.get('ifGenerationMatch');
      if (ifGenerationMatch !== null && uploadId === null) {
        const name = url.searchParams.get('name');
        if (name === null) return sendError(res, 400, 'front router: ifGenerationMatch needs ?name=');
        const current = layer.getMetadata(bucket, name)?.generation ?? 0;
        if (String(current) !== ifGenerationMatch) {
          await drain(req);
          return sendError(
            res,
            412,
            'At least one of the pre-conditions you specified did not hold.',
            'conditionNotMet',
          );
        }
      }
      const uploadType = url.searchParams.get('uploadType') ?? req.headers['x-goog-upload-protocol'];
      if (method === 'POST' && uploadType === 'resumable' && uploadId === null) {
        return startSession(req, res, url, bucket);
      }
      if (uploadId !== null && method === 'PUT') return continueSession(req, res, uploadId);
      if (uploadId !== null && method === 'DELETE') {
        try {
          uploads.cancelResumableUpload(uploadId);
        } catch {
          return sendError(res, 404, 'No such upload');
        }
        sessions.delete(uploadId);
        res.writeHead(499).end();
        return;
      }
    }

    const objectMatch = /^\/o\/([^/]+)$/.exec(rest);
    if (
      !isUpload &&
      method === 'GET' &&
      objectMatch !== null &&
      (isDownload || url.searchParams.get('alt') === 'media')
    ) {
      return sendMedia(req, res, url, bucket, decodeURIComponent(objectMatch[1] ?? ''));
    }

    req.url = pathname + url.search;
    return next();
  };

  async function startSession(req: http.IncomingMessage, res: http.ServerResponse, url: URL, bucket: string) {
    const text = (await readSmallBody(req)).toString('utf8');
    const metadata = (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>;
    const rawName =
      url.searchParams.get('name') ?? (typeof metadata.name === 'string' ? metadata.name : undefined);
    if (rawName === undefined || rawName === '') return sendError(res, 400, 'object name required');
    const name = rawName.startsWith('/') ? rawName.slice(1) : rawName;
    const contentType = headerValue(req, 'x-upload-content-type');
    const upload = uploads.startResumableUpload({
      bucketId: bucket,
      objectId: name,
      metadata: { ...(contentType === undefined ? {} : { contentType }), ...metadata },
      authorization: headerValue(req, 'authorization'),
    });
    const declared = headerValue(req, 'x-upload-content-length');
    sessions.set(upload.id, {
      bucket,
      name,
      total: declared === undefined ? undefined : Number(declared),
      resource: undefined,
    });
    const location = new URL(
      `http://${req.headers.host ?? '127.0.0.1'}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o`,
    );
    location.searchParams.set('uploadType', 'resumable');
    location.searchParams.set('name', name);
    location.searchParams.set('upload_id', upload.id);
    res.writeHead(200, { location: location.toString(), 'content-length': '0' }).end();
  }

  async function continueSession(req: http.IncomingMessage, res: http.ServerResponse, uploadId: string) {
    const session = sessions.get(uploadId);
    if (session === undefined) {
      await drain(req);
      return sendError(res, 404, 'No such upload session');
    }
    if (session.resource !== undefined) {
      await drain(req);
      return sendJson(res, 200, session.resource);
    }
    const range = parseContentRange(headerValue(req, 'content-range'));
    if (range === 'invalid') {
      await drain(req);
      return sendError(res, 400, 'invalid Content-Range');
    }
    if (range.total !== undefined) {
      if (session.total !== undefined && session.total !== range.total) {
        await drain(req);
        return sendError(res, 400, 'Content-Range total differs from the declared size');
      }
      session.total = range.total;
    }
    let received = uploads.getResumableUpload(uploadId).size;
    let position = range.start ?? received;
    if (position > received) {
      await drain(req);
      return sendError(res, 400, `chunk starts at ${position}, only ${received} bytes received`);
    }
    for await (const chunk of req as AsyncIterable<Buffer>) {
      // Bytes the server already has (a retried chunk) are skipped, like GCS does.
      const skip = Math.min(chunk.length, Math.max(0, received - position));
      position += chunk.length;
      if (skip < chunk.length) {
        uploads.continueResumableUpload(uploadId, skip === 0 ? chunk : chunk.subarray(skip));
        received = position;
      }
    }
    if (session.total !== undefined && received > session.total) {
      uploads.cancelResumableUpload(uploadId);
      sessions.delete(uploadId);
      return sendError(res, 400, `received ${received} bytes, more than the declared ${session.total}`);
    }
    const complete = session.total !== undefined ? received === session.total : range.openEnded;
    if (!complete) {
      const headers: http.OutgoingHttpHeaders = { 'content-length': '0' };
      if (received > 0) headers.range = `bytes=0-${received - 1}`;
      res.writeHead(308, headers).end();
      return;
    }
    const upload = uploads.finalizeResumableUpload(uploadId);
    const metadata = await layer.uploadObject(upload);
    session.resource = options.toObjectResource(metadata);
    sendJson(res, 200, session.resource);
  }

  function sendMedia(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    bucket: string,
    name: string,
  ) {
    const metadata = layer.getMetadata(bucket, name);
    const generation = url.searchParams.get('generation');
    if (metadata === undefined || (generation !== null && generation !== String(metadata.generation))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`No such object: ${bucket}/${name}`);
      return;
    }
    const size = Number(metadata.size);
    const headers: http.OutgoingHttpHeaders = {
      'content-type': metadata.contentType ?? 'application/octet-stream',
      'accept-ranges': 'bytes',
      etag: metadata.etag,
      'x-goog-generation': String(metadata.generation),
      'x-goog-metageneration': String(metadata.metageneration),
      'x-goog-hash': `crc32c=${crc32cBase64(metadata.crc32c)},md5=${metadata.md5Hash}`,
      'x-goog-stored-content-encoding': 'identity',
      'x-goog-stored-content-length': String(size),
    };
    const diskPath = layer._persistence.getDiskPath(layer.path(bucket, name));
    const range = parseRange(headerValue(req, 'range'), size);
    if (range === 'unsatisfiable') {
      res
        .writeHead(416, { 'content-range': `bytes */${size}`, 'content-type': 'text/plain' })
        .end('Requested range not satisfiable');
      return;
    }
    let status = 200;
    let start = 0;
    let length = size;
    if (range !== undefined) {
      status = 206;
      start = range.start;
      length = range.end - range.start + 1;
      headers['content-range'] = `bytes ${range.start}-${range.end}/${size}`;
    }
    headers['content-length'] = String(length);
    res.writeHead(status, headers);
    if (length === 0) {
      res.end();
      return;
    }
    const file = fs.createReadStream(diskPath, { start, end: start + length - 1 });
    file.on('error', () => res.destroy());
    file.pipe(res);
  }
}

function bucketResource(name: string): Record<string, unknown> {
  return {
    kind: 'storage#bucket',
    id: name,
    name,
    location: 'US',
    storageClass: 'STANDARD',
    metageneration: '1',
    timeCreated: new Date().toISOString(),
  };
}

interface ContentRange {
  readonly start: number | undefined;
  readonly total: number | undefined;
  /** `bytes N-*\/*`: the rest of the object is in this request. */
  readonly openEnded: boolean;
}

function parseContentRange(header: string | undefined): ContentRange | 'invalid' {
  if (header === undefined) return { start: undefined, total: undefined, openEnded: true };
  const query = /^bytes \*\/(\d+|\*)$/.exec(header);
  if (query !== null) {
    return { start: undefined, total: query[1] === '*' ? undefined : Number(query[1]), openEnded: false };
  }
  const data = /^bytes (\d+)-(-1|\d+|\*)\/(\d+|\*)$/.exec(header);
  if (data === null) return 'invalid';
  const total = data[3] === '*' ? undefined : Number(data[3]);
  return { start: Number(data[1]), total, openEnded: data[2] === '*' && total === undefined };
}

function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '') {
    if (last === '') return undefined;
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (start >= size) return 'unsatisfiable';
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (end < start) return undefined;
  return { start, end };
}

function crc32cBase64(decimal: string): string {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(Number.parseInt(decimal, 10) >>> 0);
  return buffer.toString('base64');
}

function headerValue(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readSmallBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > 1024 * 1024) throw new Error('request body too large for a metadata request');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function drain(req: http.IncomingMessage): Promise<void> {
  for await (const _chunk of req) {
    /* discard */
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function sendError(res: http.ServerResponse, status: number, message: string, reason = 'invalid'): void {
  sendJson(res, status, {
    error: { code: status, message, errors: [{ message, domain: 'global', reason }] },
  });
}
