import { parseProviderSettings, PROVIDER_SECTIONS, readOrthancConfiguration } from '../../config/parse.js';
import type { ProviderId, ProviderSettings } from '../../config/settings.js';
import { ConfigurationError } from '../../errors.js';
import { loadKeyring, type Keyring } from '../../crypto/keyring.js';
import { silentLogger, type Logger } from '../../logging.js';
import type { BucketClient } from '../../storage/contract.js';
import type { NamingOptions } from '../../storage/naming.js';

type BucketProvider = Exclude<ProviderId, 'filesystem'>;

/** Each provider's package and the factory it exports (the one its gateway uses). */
const PROVIDER_MODULES: Readonly<Record<BucketProvider, { module: string; factory: string }>> = {
  aws: { module: '@orthanc-object-storage/aws', factory: 'createS3BucketClient' },
  azure: { module: '@orthanc-object-storage/azure', factory: 'openAzureBucketClient' },
  google: { module: '@orthanc-object-storage/google', factory: 'createGcsBucketClient' },
};

/** What a bucket command works on: Orthanc's own configuration, opened. */
export interface BucketTarget {
  readonly settings: Exclude<ProviderSettings, { provider: 'filesystem' }>;
  readonly client: BucketClient;
  readonly naming: NamingOptions & { readonly enableLegacyUnknownFiles: boolean };
  /** Every name under RootPath starts with it. */
  readonly prefix: string;
  /** Current and previous master keys; undefined when encryption is off. */
  readonly keyring: Keyring | undefined;
}

/** Find the one provider section in Orthanc's configuration (file or folder) and open its bucket. */
export async function openBucketTarget(
  configPath: string,
  log: Logger = silentLogger,
): Promise<BucketTarget> {
  const configuration = await readOrthancConfiguration(configPath);
  const present = (Object.keys(PROVIDER_MODULES) as BucketProvider[]).filter(
    (provider) =>
      configuration[PROVIDER_SECTIONS[provider]] !== undefined ||
      (provider === 'azure' && configuration['BlobStorage'] !== undefined),
  );
  if (present.length !== 1) {
    throw new ConfigurationError(
      `${configPath}: expected exactly one of the sections ${(
        Object.keys(PROVIDER_MODULES) as BucketProvider[]
      )
        .map((p) => PROVIDER_SECTIONS[p])
        .join(
          ', ',
        )}, found ${present.length === 0 ? 'none' : present.map((p) => PROVIDER_SECTIONS[p]).join(' and ')}`,
    );
  }
  const provider = present[0]!;
  const { settings } = parseProviderSettings(provider, configuration);
  if (settings === undefined) {
    throw new ConfigurationError(`${configPath}: section ${PROVIDER_SECTIONS[provider]} is not enabled`);
  }
  const { module, factory } = PROVIDER_MODULES[provider];
  let exports: Record<string, unknown>;
  try {
    exports = (await import(module)) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigurationError(
      `${PROVIDER_SECTIONS[provider]} needs the package ${module} installed beside this one (${(error as Error).message})`,
      { cause: error },
    );
  }
  const open = exports[factory] as (s: unknown, o: { log: Logger }) => Promise<BucketClient>;
  const client = await open(settings, { log });
  const keyring =
    settings.encryption === undefined
      ? undefined
      : await loadKeyring(settings.encryption.masterKey, settings.encryption.previousMasterKeys);
  const naming = {
    rootPath: settings.rootPath,
    storageStructure: settings.storageStructure,
    encrypted: settings.encryption !== undefined,
    enableLegacyUnknownFiles: settings.enableLegacyUnknownFiles,
  };
  return {
    settings: settings as BucketTarget['settings'],
    client,
    naming,
    prefix: settings.rootPath === '' ? '' : `${settings.rootPath}/`,
    keyring,
  };
}
