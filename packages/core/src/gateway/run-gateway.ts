// STUB (owner: bridge helper).
import type { ProviderId, ProviderSettings } from '../config/settings.js';
import type { Logger } from '../logging.js';
import type { BucketClient } from '../storage/contract.js';

/** What each provider package gives the gateway: how to open its bucket client. */
export interface ProviderDefinition<P extends ProviderId> {
  readonly provider: P;
  /**
   * Open the client and do any startup work (e.g. create the container). Throw
   * ConfigurationError for a definite configuration problem: Orthanc then refuses to start.
   */
  createBucketClient(
    settings: Extract<ProviderSettings, { provider: P }>,
    context: { readonly log: Logger },
  ): Promise<BucketClient>;
}

/** Entry point of a gateway process started by the native shim. */
export async function runGateway<P extends ProviderId>(_definition: ProviderDefinition<P>): Promise<void> {
  throw new Error('not implemented');
}
