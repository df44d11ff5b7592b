// STUB (owner: config helper).
import type { ProviderSettings } from '../config/settings.js';
import type { Logger } from '../logging.js';
import type { BucketClient, ObjectStorage } from './contract.js';

/**
 * Build the full storage stack for validated settings: naming over the bucket client,
 * A1 encryption when enabled, hybrid mode with Orthanc's own storage directory.
 * For the `filesystem` provider, pass `undefined` as client.
 */
export async function createObjectStorage(
  _settings: ProviderSettings,
  _client: BucketClient | undefined,
  _log: Logger,
): Promise<ObjectStorage> {
  throw new Error('not implemented');
}
