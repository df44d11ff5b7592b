import { sdkLogger } from './sdk-logger.js';

function collect() {
  const lines: string[] = [];
  const log = {
    info: (m: string) => lines.push(`I ${m}`),
    warn: (m: string) => lines.push(`W ${m}`),
    error: (m: string) => lines.push(`E ${m}`),
  };
  return { lines, log };
}

describe('sdkLogger', () => {
  it('logs a command event as one line without input, output or headers', () => {
    const { lines, log } = collect();
    sdkLogger(log, []).info({
      clientName: 'S3Client',
      commandName: 'PutObjectCommand',
      input: { Bucket: 'b', Key: 'k', Body: Buffer.alloc(10_000) },
      output: { ETag: '"x"' },
      metadata: { httpStatusCode: 200, requestId: 'tx1', attempts: 1 },
    });
    expect(lines).toEqual(['I AWS SDK: PutObjectCommand, HTTP 200, attempts 1, request id tx1']);
  });

  it('redacts signatures, credentials and the configured secrets from free text', () => {
    const { lines, log } = collect();
    const logger = sdkLogger(log, ['SECRETVALUE123', 'AKIDVALUE']);
    logger.warn(
      'Authorization: AWS4-HMAC-SHA256 Credential=AKIDVALUE/20250101/eu/s3/aws4_request, Signature=abcdef',
    );
    logger.debug('X-Amz-Signature=0123abcd&X-Amz-Credential=AKIDVALUE%2F2025 secret SECRETVALUE123');
    logger.error({
      commandName: 'GetObjectCommand',
      error: { name: 'NoSuchKey' },
      metadata: { httpStatusCode: 404 },
    });
    const all = lines.join('\n');
    expect(all).not.toMatch(/SECRETVALUE123|AKIDVALUE|abcdef|0123abcd/);
    expect(lines[0]).toMatch(/^W AWS SDK: Authorization: <redacted>/);
    expect(lines[2]).toBe('E AWS SDK: GetObjectCommand, HTTP 404, error NoSuchKey');
  });
});
