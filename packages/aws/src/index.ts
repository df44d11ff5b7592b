export * from './s3-bucket-client.js';
export { describeBucket, s3ClientConfig } from './s3-client-config.js';
export { toStorageError } from './s3-errors.js';
