export * from './gcs-bucket-client.js';
export { loadServiceAccountFile, type ServiceAccountKey } from './service-account.js';
export { toStorageError } from './gcs-errors.js';
