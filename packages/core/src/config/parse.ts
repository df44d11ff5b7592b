// STUB (owner: config helper). Signatures are fixed; bodies to be written.
import type { ProviderId, ProviderSettings } from './settings.js';

/** Orthanc configuration section of each provider (the legacy `BlobStorage` is also accepted for azure). */
export const PROVIDER_SECTIONS: Readonly<Record<ProviderId, string>> = {
  aws: 'AwsS3Storage',
  azure: 'AzureBlobStorage',
  google: 'GoogleCloudStorage',
  filesystem: 'FileSystemObjectStorage',
};

export interface ParsedSettings<S> {
  /** Undefined when the provider's section is absent: the plugin is disabled. */
  readonly settings: S | undefined;
  /** Unknown keys and deprecated aliases, one sentence each. */
  readonly warnings: readonly string[];
}

/** Validate Orthanc's whole configuration object for one provider. Throws ConfigurationError. */
export function parseProviderSettings<P extends ProviderId>(
  _provider: P,
  _configuration: unknown,
): ParsedSettings<Extract<ProviderSettings, { provider: P }>> {
  throw new Error('not implemented');
}

/** Parse Orthanc configuration text, which may hold `//` and `/* *\/` comments. */
export function parseOrthancConfigText(_text: string, _source: string): Record<string, unknown> {
  throw new Error('not implemented');
}

/** Read an Orthanc configuration file, or a folder of `.json` files merged as Orthanc does. */
export async function readOrthancConfiguration(_path: string): Promise<Record<string, unknown>> {
  throw new Error('not implemented');
}
