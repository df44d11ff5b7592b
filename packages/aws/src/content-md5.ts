import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';

export function md5Base64(data: Uint8Array): string {
  return createHash('md5').update(data).digest('base64');
}

/**
 * Give every PutObject and UploadPart whose body is in memory a Content-MD5 header, so the
 * server rejects a body altered on the way (a safety net: the client sets it on every request).
 */
export function addContentMd5(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      const command = context.commandName;
      if (
        (command === 'PutObjectCommand' || command === 'UploadPartCommand') &&
        request.headers !== undefined &&
        request.body instanceof Uint8Array &&
        !Object.keys(request.headers).some((name) => name.toLowerCase() === 'content-md5')
      ) {
        request.headers['content-md5'] = md5Base64(request.body);
      }
      return next(args);
    },
    { step: 'build', name: 'orthancContentMd5', override: true },
  );
}
