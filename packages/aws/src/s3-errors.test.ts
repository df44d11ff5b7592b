// Error mapping for S3 error codes RGW 16 cannot produce (archived objects, regions, tokens).
// The SDK gives errors a name (the S3 code) and $metadata; RGW and S3 HEAD answers carry no text.
import { toStorageError, isBadCredentials } from './s3-errors.js';

const BUCKET = 's3://archive (endpoint https://s3.example, region eu-west-1)';

function sdkError(name: string, status: number, message = 'UnknownError'): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
}

describe('toStorageError', () => {
  it('InvalidObjectState (GLACIER / DEEP_ARCHIVE not restored) says the object must be restored first', () => {
    const error = toStorageError(sdkError('InvalidObjectState', 403), BUCKET, 'read', 'a.dcm');
    expect(error.name).toBe('ObjectStorageError');
    expect(error.message).toContain('a.dcm in s3://archive');
    expect(error.message).toMatch(/GLACIER or DEEP_ARCHIVE.*must be restored first/);
  });

  it('maps codes to the project errors', () => {
    expect(toStorageError(sdkError('NoSuchKey', 404), BUCKET, 'read', 'a.dcm').name).toBe(
      'ObjectNotFoundError',
    );
    expect(toStorageError(sdkError('NotFound', 404), BUCKET, 'read', 'a.dcm').name).toBe(
      'ObjectNotFoundError',
    );
    expect(toStorageError(sdkError('InvalidRange', 416), BUCKET, 'read a range of', 'a').name).toBe(
      'RangeNotSatisfiableError',
    );
    expect(toStorageError(sdkError('BadDigest', 400), BUCKET, 'write', 'a').name).toBe('IntegrityError');
    const bucket = toStorageError(sdkError('NoSuchBucket', 404), BUCKET, 'read', 'a');
    expect(bucket.name).toBe('ObjectStorageError');
    expect(bucket.message).toContain('the bucket does not exist');
  });

  it('names the bucket, its endpoint and the operation for AccessDenied and rejected credentials', () => {
    const denied = toStorageError(sdkError('AccessDenied', 403), BUCKET, 'remove', 'b.json');
    expect(denied.message).toContain(
      'access denied: cannot remove b.json in s3://archive (endpoint https://s3.example',
    );
    for (const code of ['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken']) {
      const error = toStorageError(sdkError(code, 403), BUCKET, 'write', 'c');
      expect(error.message).toContain(`rejected the credentials (${code})`);
      expect(error.message).toContain('https://s3.example');
      expect(isBadCredentials(sdkError(code, 403))).toBe(true);
    }
    expect(isBadCredentials(sdkError('AccessDenied', 403))).toBe(false);
  });

  it('a bare 403 without a code (HEAD answers) is reported as access denied', () => {
    expect(toStorageError(sdkError('Forbidden', 403), BUCKET, 'read', 'd').message).toMatch(/access denied/);
  });

  it('reports a wrong region and keeps unknown failures with their code and status', () => {
    expect(toStorageError(sdkError('PermanentRedirect', 301), BUCKET, 'read', 'e').message).toMatch(
      /another region than the configured Region/,
    );
    const other = toStorageError(
      sdkError('SlowDown', 503, 'Please reduce your request rate.'),
      BUCKET,
      'write',
      'f',
    );
    expect(other.message).toBe(
      `S3: cannot write f in ${BUCKET} (SlowDown, HTTP 503): Please reduce your request rate.`,
    );
    const network = toStorageError(
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
      BUCKET,
      'read',
      'g',
    );
    expect(network.message).toContain('connect ECONNREFUSED 127.0.0.1:9');
  });
});
