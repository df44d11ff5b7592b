import { availableParallelism } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { ConfigurationError } from '../errors.js';
import { isPlainObject, SectionReader } from './section-reader.js';
import type {
  AwsChecksumMode,
  AwsS3Settings,
  AwsStorageClass,
  AzureAccessTier,
  AzureBlobSettings,
  CommonSettings,
  EncryptionSettings,
  FileSystemSettings,
  GoogleCloudSettings,
  HybridMode,
  MasterKeyRef,
  OrthancSettings,
  ProviderId,
  ProviderSettings,
  StorageStructure,
} from './settings.js';

export { parseOrthancConfigText, readOrthancConfiguration } from './config-file.js';

/** Orthanc configuration section of each provider (the legacy `BlobStorage` is also accepted for azure). */
export const PROVIDER_SECTIONS: Readonly<Record<ProviderId, string>> = {
  aws: 'AwsS3Storage',
  azure: 'AzureBlobStorage',
  google: 'GoogleCloudStorage',
  filesystem: 'FileSystemObjectStorage',
};

/** The section of the first Azure plugin (2020), still accepted. */
export const LEGACY_AZURE_SECTION = 'BlobStorage';

/** `GatewayCallTimeout` default: above AWS's `RequestTimeout` default (1200 s), so backends time out first. */
export const DEFAULT_GATEWAY_CALL_TIMEOUT_SECONDS = 1800;

/** Most worker threads `GatewayWorkers` accepts (the shim keeps that many sockets at most). */
export const MAX_GATEWAY_WORKERS = 64;
/** `GatewayWorkers` default cap: each worker has its own SDK connections and upload buffers. */
export const DEFAULT_GATEWAY_WORKERS_CAP = 4;

/**
 * `GatewayWorkers` default: half the CPUs available to the process (Orthanc spends about as much
 * CPU per instance as the gateway, so the gateway can use about half of them), 1 to 4.
 */
export function defaultGatewayWorkers(): number {
  return Math.max(1, Math.min(Math.floor(availableParallelism() / 2), DEFAULT_GATEWAY_WORKERS_CAP));
}

export interface ParsedSettings<S> {
  /** Undefined when the provider's section is absent: the plugin is disabled. */
  readonly settings: S | undefined;
  /** Unknown keys and deprecated aliases, one sentence each. */
  readonly warnings: readonly string[];
}

const MB = 1024 * 1024;
/** Largest timer Node accepts is 2^31-1 ms. */
const MAX_SECONDS = 2_147_483;
const MAX_UINT32 = 4_294_967_295;

const COMMON_KEYS = [
  'RootPath',
  'StorageStructure',
  'EnableLegacyUnknownFiles',
  'HybridMode',
  'MigrationFromFileSystemEnabled',
  'StorageEncryption',
  'NodeExecutable',
  'GatewayCallTimeout',
  'GatewayWorkers',
] as const;
const ENCRYPTION_KEYS = [
  'Enable',
  'MasterKey',
  'PreviousMasterKeys',
  'MaxConcurrentInputSize',
  'WriteFormat',
];
const WRITE_FORMATS = ['C1', 'A1'] as const;
const AWS_KEYS = [
  'BucketName',
  'Region',
  'AccessKey',
  'SecretKey',
  'Endpoint',
  'VirtualAddressing',
  'ConnectionTimeout',
  'ConnectTimeout',
  'RequestTimeout',
  'MaxConnections',
  'MaxRetries',
  'UseTransferManager',
  'TransferPoolSize',
  'TransferBufferSize',
  'StorageClass',
  'Tags',
  'EnableAwsSdkLogs',
  'RequestChecksumCalculation',
];
const AZURE_KEYS = [
  'ConnectionString',
  'AccountUrl',
  'ContainerName',
  'CreateContainerIfNotExists',
  'AccessTier',
];
const LEGACY_AZURE_KEYS = [
  'AccountName',
  'AccountKey',
  'ContainerName',
  'BlobEndpoint',
  'CreateContainerIfNotExists',
  'AccessTier',
];
const GOOGLE_KEYS = ['ServiceAccountFile', 'BucketName'];
const FILESYSTEM_KEYS = ['Directory'];
const TOP_LEVEL_KEYS = ['StorageDirectory', 'SyncStorageArea', 'HttpsCACertificates'];

const STORAGE_CLASSES: readonly AwsStorageClass[] = [
  'STANDARD',
  'REDUCED_REDUNDANCY',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'DEEP_ARCHIVE',
  'OUTPOSTS',
  'GLACIER_IR',
  'SNOW',
];
const CHECKSUM_MODES: readonly AwsChecksumMode[] = ['WHEN_REQUIRED', 'WHEN_SUPPORTED'];
const ACCESS_TIERS: readonly AzureAccessTier[] = ['Hot', 'Cool', 'Archive', 'Premium', 'Cold'];
const STRUCTURES: readonly StorageStructure[] = ['flat', 'legacy'];
const HYBRID_MODES: readonly HybridMode[] = ['Disabled', 'WriteToFileSystem', 'WriteToObjectStorage'];

type SettingsOf<P extends ProviderId> = Extract<ProviderSettings, { provider: P }>;

/** Where Orthanc's configuration came from, for the paths it holds. */
export interface ParseOptions {
  /**
   * The folder Orthanc resolves relative top-level paths against (`StorageDirectory`,
   * `HttpsCACertificates`): the configuration file's folder, or the configuration folder itself.
   * When undefined, relative paths stay relative (to the working directory).
   */
  readonly baseDirectory?: string;
}

/** Validate Orthanc's whole configuration object for one provider. Throws ConfigurationError. */
export function parseProviderSettings<P extends ProviderId>(
  provider: P,
  configuration: unknown,
  options: ParseOptions = {},
): ParsedSettings<SettingsOf<P>> {
  if (!isPlainObject(configuration)) {
    throw new ConfigurationError('invalid configuration: Orthanc configuration must be a JSON object');
  }
  const warnings: string[] = [];
  let sectionName = PROVIDER_SECTIONS[provider];
  if (provider === 'azure' && configuration[LEGACY_AZURE_SECTION] !== undefined) {
    if (configuration[sectionName] !== undefined) {
      warnings.push(`"${LEGACY_AZURE_SECTION}" is ignored because "${sectionName}" is present`);
    } else {
      sectionName = LEGACY_AZURE_SECTION;
      warnings.push(
        `"${LEGACY_AZURE_SECTION}" is the old section of the Azure plugin; prefer "${PROVIDER_SECTIONS.azure}"`,
      );
    }
  }
  if (!Object.prototype.hasOwnProperty.call(configuration, sectionName)) {
    return { settings: undefined, warnings };
  }
  const sectionValue = configuration[sectionName];
  if (!isPlainObject(sectionValue)) {
    throw new ConfigurationError(
      `invalid configuration: "${sectionName}" must be a JSON object (the plugin's section), not ${sectionValue === null ? 'null' : Array.isArray(sectionValue) ? 'an array' : typeof sectionValue}`,
    );
  }

  const specificKeys = {
    aws: AWS_KEYS,
    azure: sectionName === LEGACY_AZURE_SECTION ? LEGACY_AZURE_KEYS : AZURE_KEYS,
    google: GOOGLE_KEYS,
    filesystem: FILESYSTEM_KEYS,
  }[provider];
  const section = new SectionReader(sectionName, sectionValue, [...COMMON_KEYS, ...specificKeys]);
  const common = parseCommon(section, parseTopLevel(configuration, options.baseDirectory), warnings);

  let settings: ProviderSettings;
  switch (provider) {
    case 'aws':
      settings = parseAws(section, common);
      break;
    case 'azure':
      settings =
        sectionName === LEGACY_AZURE_SECTION
          ? parseLegacyAzure(section, common)
          : parseAzure(section, common);
      break;
    case 'google':
      settings = parseGoogle(section, common);
      break;
    case 'filesystem':
      settings = parseFileSystem(section, common);
      break;
    default:
      throw new ConfigurationError(`unknown provider ${JSON.stringify(provider)}`);
  }
  const unknown = section.unknownKeysWarning();
  if (unknown) warnings.unshift(unknown);
  return { settings: settings as SettingsOf<P>, warnings };
}

/** Orthanc's own keys, with the meaning Orthanc gives them (relative paths, "" for none). */
function parseTopLevel(
  configuration: Record<string, unknown>,
  baseDirectory: string | undefined,
): OrthancSettings {
  const top = new SectionReader('(top level)', configuration, TOP_LEVEL_KEYS);
  const asOrthancPath = (value: string) =>
    baseDirectory === undefined ? value : resolvePath(baseDirectory, value);
  const caBundle = top.raw('HttpsCACertificates');
  if (caBundle !== undefined && typeof caBundle !== 'string') {
    top.fail('HttpsCACertificates', caBundle, 'the path of a CA bundle file, or "" for none');
  }
  return {
    storageDirectory: asOrthancPath(
      top.optionalString('StorageDirectory', 'a non-empty path (default "OrthancStorage")') ??
        'OrthancStorage',
    ),
    syncStorageArea: top.boolean('SyncStorageArea', true),
    // Orthanc's default configuration holds "HttpsCACertificates": "", which Orthanc reads as none.
    httpsCaCertificates:
      typeof caBundle === 'string' && caBundle !== '' ? asOrthancPath(caBundle) : undefined,
  };
}

function parseRootPath(section: SectionReader): string {
  const allowed = `a relative object-name prefix: not starting with "/", no empty, "." or ".." segments (default "": the bucket root)`;
  if (!section.has('RootPath')) return '';
  const value = section.raw('RootPath');
  if (typeof value !== 'string') section.fail('RootPath', value, allowed);
  if (value.startsWith('/')) section.fail('RootPath', value, allowed);
  const trimmed = value.endsWith('/') ? value.slice(0, -1) : value;
  if (trimmed === '') return '';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) section.fail('RootPath', value, allowed);
  if (trimmed.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) {
    section.fail('RootPath', value, allowed);
  }
  return trimmed;
}

function parseHybridMode(section: SectionReader, warnings: string[]): HybridMode {
  const hybridMode = section.oneOf('HybridMode', HYBRID_MODES, 'Disabled');
  const migration = section.boolean('MigrationFromFileSystemEnabled', false);
  if (!migration) return hybridMode;
  if (hybridMode === 'Disabled') {
    warnings.push(
      `"${section.path}": "MigrationFromFileSystemEnabled" is deprecated; it means "HybridMode": "WriteToObjectStorage", write that instead`,
    );
    return 'WriteToObjectStorage';
  }
  warnings.push(
    `"${section.path}": deprecated "MigrationFromFileSystemEnabled" is ignored because "HybridMode" is "${hybridMode}"`,
  );
  return hybridMode;
}

function parseKeyRef(reader: SectionReader, key: string, value: unknown, allowed: string): MasterKeyRef {
  if (!Array.isArray(value) || value.length !== 2) reader.fail(key, value, allowed);
  const [id, path] = value as unknown[];
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_UINT32)
    reader.fail(key, value, allowed);
  if (typeof path !== 'string' || path.length === 0) reader.fail(key, value, allowed);
  return { id, path };
}

function parseEncryption(section: SectionReader, warnings: string[]): EncryptionSettings | undefined {
  const encryption = section.section('StorageEncryption', ENCRYPTION_KEYS);
  if (!encryption) return undefined;
  const unknown = encryption.unknownKeysWarning();
  if (unknown) warnings.push(unknown);
  if (!encryption.boolean('Enable', true)) return undefined;

  const keyAllowed = '[id, "path"]: an integer key id from 0 to 4294967295 and the path of a base64 key file';
  if (!encryption.has('MasterKey'))
    encryption.missing('MasterKey', `${keyAllowed} (required when "Enable" is true)`);
  const masterKey = parseKeyRef(encryption, 'MasterKey', encryption.raw('MasterKey'), keyAllowed);

  const previousAllowed = `a list of ${keyAllowed} pairs, e.g. [[1, "/keys/1.key"], [2, "/keys/2.key"]]`;
  const previousRaw: unknown = encryption.has('PreviousMasterKeys')
    ? encryption.raw('PreviousMasterKeys')
    : [];
  if (!Array.isArray(previousRaw)) encryption.fail('PreviousMasterKeys', previousRaw, previousAllowed);
  const previousMasterKeys = (previousRaw as unknown[]).map((entry: unknown) => {
    if (!Array.isArray(entry) || entry.length !== 2)
      encryption.fail('PreviousMasterKeys', previousRaw, previousAllowed);
    return parseKeyRef(encryption, 'PreviousMasterKeys', entry, previousAllowed);
  });
  const seen = new Set<number>();
  for (const { id } of [masterKey, ...previousMasterKeys]) {
    if (seen.has(id)) {
      encryption.fail(
        'PreviousMasterKeys',
        previousRaw,
        `distinct key ids: id ${id} is given twice (MasterKey included)`,
      );
    }
    seen.add(id);
  }

  const maxMb = encryption.integerWithDefault('MaxConcurrentInputSize', 1024, {
    min: 1,
    max: 1_048_576,
    unit: 'MB',
  });
  const writeFormat = encryption.oneOf('WriteFormat', WRITE_FORMATS, 'C1');
  return { enabled: true, masterKey, previousMasterKeys, maxConcurrentInputBytes: maxMb * MB, writeFormat };
}

function parseCommon(section: SectionReader, orthanc: OrthancSettings, warnings: string[]): CommonSettings {
  return {
    section: section.path,
    rootPath: parseRootPath(section),
    storageStructure: section.oneOf('StorageStructure', STRUCTURES, 'flat'),
    enableLegacyUnknownFiles: section.boolean('EnableLegacyUnknownFiles', false),
    hybridMode: parseHybridMode(section, warnings),
    encryption: parseEncryption(section, warnings),
    nodeExecutable: section.optionalString('NodeExecutable', 'the path of a Node.js >= 22 executable'),
    gatewayCallTimeoutSeconds: section.integerWithDefault(
      'GatewayCallTimeout',
      DEFAULT_GATEWAY_CALL_TIMEOUT_SECONDS,
      {
        min: 1,
        max: MAX_SECONDS,
        unit: 'seconds',
      },
    ),
    gatewayWorkers:
      section.integer('GatewayWorkers', undefined, {
        min: 1,
        max: MAX_GATEWAY_WORKERS,
        unit: `worker threads (default: half the CPUs available, 1 to ${DEFAULT_GATEWAY_WORKERS_CAP})`,
      }) ?? defaultGatewayWorkers(),
    orthanc,
  };
}

function parseEndpoint(section: SectionReader, key: string): string | undefined {
  const allowed = 'an http:// or https:// URL, or a host[:port] (then https is used)';
  const value = section.optionalString(key, allowed);
  if (value === undefined) return undefined;
  const withScheme = value.includes('://') ? value : `https://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return section.fail(key, value, allowed);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) {
    section.fail(key, value, `${allowed}, without credentials`);
  }
  return withScheme;
}

function parseTags(section: SectionReader): Record<string, string> {
  const allowed = 'an object of at most 10 string tags, keys 1-128 characters, values at most 256 characters';
  if (!section.has('Tags')) return {};
  const value = section.raw('Tags');
  if (!isPlainObject(value)) section.fail('Tags', value, allowed);
  const entries = Object.entries(value);
  const valid =
    entries.length <= 10 &&
    entries.every(([k, v]) => k.length >= 1 && k.length <= 128 && typeof v === 'string' && v.length <= 256);
  if (!valid) section.fail('Tags', value, allowed);
  return Object.fromEntries(entries) as Record<string, string>;
}

function parseAws(section: SectionReader, common: CommonSettings): AwsS3Settings {
  const accessKey = section.optionalString(
    'AccessKey',
    'a non-empty string, given together with "SecretKey"',
  );
  const secretKey = section.optionalString(
    'SecretKey',
    'a non-empty string, given together with "AccessKey"',
  );
  if ((accessKey === undefined) !== (secretKey === undefined)) {
    const present = accessKey === undefined ? 'SecretKey' : 'AccessKey';
    const absent = accessKey === undefined ? 'AccessKey' : 'SecretKey';
    section.fail(
      present,
      '<redacted>',
      `"AccessKey" and "SecretKey" together, or neither (then the AWS SDK's default credential chain is used); "${absent}" is missing`,
    );
  }

  const seconds = { min: 1, max: MAX_SECONDS, unit: 'seconds' };
  const connectionTimeout = section.integer('ConnectionTimeout', undefined, seconds);
  const connectTimeout = section.integer('ConnectTimeout', undefined, seconds);
  if (
    connectionTimeout !== undefined &&
    connectTimeout !== undefined &&
    connectionTimeout !== connectTimeout
  ) {
    section.fail(
      'ConnectTimeout',
      connectTimeout,
      `the same value as "ConnectionTimeout" (${connectionTimeout}), or only one of the two: "ConnectTimeout" is an alias`,
    );
  }

  return {
    ...common,
    provider: 'aws',
    bucketName: section.requiredString('BucketName', 'the bucket name (non-empty string)'),
    region: section.requiredString('Region', 'an AWS region name such as "eu-west-1" (non-empty string)'),
    accessKey,
    secretKey,
    endpoint: parseEndpoint(section, 'Endpoint'),
    virtualAddressing: section.boolean('VirtualAddressing', true),
    connectionTimeoutSeconds: connectionTimeout ?? connectTimeout ?? 30,
    requestTimeoutSeconds: section.integerWithDefault('RequestTimeout', 1200, seconds),
    maxConnections: section.integerWithDefault('MaxConnections', 25, { min: 1, max: 10_000 }),
    maxRetries: section.integerWithDefault('MaxRetries', 10, { min: 0, max: 100 }),
    useTransferManager: section.boolean('UseTransferManager', false),
    transferPoolSize: section.integerWithDefault('TransferPoolSize', 10, { min: 1, max: 1000 }),
    // S3 parts are 5 MiB to 5 GiB.
    transferBufferBytes:
      section.integerWithDefault('TransferBufferSize', 5, { min: 5, max: 5120, unit: 'MB' }) * MB,
    storageClass: section.oneOf('StorageClass', STORAGE_CLASSES, undefined),
    tags: parseTags(section),
    enableAwsSdkLogs: section.boolean('EnableAwsSdkLogs', false),
    requestChecksumCalculation: section.oneOf('RequestChecksumCalculation', CHECKSUM_MODES, 'WHEN_REQUIRED'),
  };
}

/** Azure container names: 3-63 lowercase letters, digits and single hyphens; or `$root` / `$web`. */
function parseContainerName(section: SectionReader): string {
  const allowed =
    'an Azure container name: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit';
  const raw = section.requiredString('ContainerName', allowed);
  const name = raw.trim();
  const valid = name === '$root' || name === '$web' || /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/.test(name);
  if (!valid) section.fail('ContainerName', raw, allowed);
  return name;
}

function parseAzure(section: SectionReader, common: CommonSettings): AzureBlobSettings {
  const connectionStringRaw = section.optionalString(
    'ConnectionString',
    'a non-empty Azure storage connection string',
  );
  const connectionString = connectionStringRaw?.trim();
  if (connectionStringRaw !== undefined && connectionString === '') {
    section.fail('ConnectionString', connectionStringRaw, 'a non-empty Azure storage connection string');
  }
  const accountUrl = parseEndpoint(section, 'AccountUrl');
  if (accountUrl !== undefined && new URL(accountUrl).search !== '') {
    section.fail(
      'AccountUrl',
      '<URL with a query>',
      'the account URL without a query: SAS tokens belong in "ConnectionString"',
    );
  }
  if ((connectionString === undefined) === (accountUrl === undefined)) {
    const problem = connectionString === undefined ? 'neither is given' : 'both are given';
    throw new ConfigurationError(
      `invalid configuration: "${section.path}" needs exactly one of "ConnectionString" (account key or SAS) and "AccountUrl" (Azure AD: managed identity, workload identity or environment credentials); ${problem}`,
    );
  }
  return {
    ...common,
    provider: 'azure',
    connectionString,
    accountUrl,
    containerName: parseContainerName(section),
    createContainerIfNotExists: section.boolean('CreateContainerIfNotExists', true),
    accessTier: section.oneOf('AccessTier', ACCESS_TIERS, undefined),
  };
}

/** The old `BlobStorage` section: account name and key, turned into a connection string. */
function parseLegacyAzure(section: SectionReader, common: CommonSettings): AzureBlobSettings {
  const accountName = section.requiredString(
    'AccountName',
    'an Azure storage account name: 3 to 24 lowercase letters and digits',
  );
  if (!/^[a-z0-9]{3,24}$/.test(accountName)) {
    section.fail(
      'AccountName',
      accountName,
      'an Azure storage account name: 3 to 24 lowercase letters and digits',
    );
  }
  const keyAllowed = 'the base64 account key';
  const accountKey = section.requiredString('AccountKey', keyAllowed).trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(accountKey)) section.fail('AccountKey', '<redacted>', keyAllowed);
  const blobEndpoint = parseEndpoint(section, 'BlobEndpoint');
  if (blobEndpoint !== undefined && /[;\s]/.test(blobEndpoint)) {
    section.fail('BlobEndpoint', blobEndpoint, 'a URL without ";" or spaces');
  }
  const protocol = blobEndpoint === undefined ? 'https' : new URL(blobEndpoint).protocol.slice(0, -1);
  const connectionString =
    `DefaultEndpointsProtocol=${protocol};AccountName=${accountName};AccountKey=${accountKey}` +
    (blobEndpoint === undefined ? '' : `;BlobEndpoint=${blobEndpoint}`);
  return {
    ...common,
    provider: 'azure',
    connectionString,
    accountUrl: undefined,
    containerName: parseContainerName(section),
    createContainerIfNotExists: section.boolean('CreateContainerIfNotExists', true),
    accessTier: section.oneOf('AccessTier', ACCESS_TIERS, undefined),
  };
}

function parseGoogle(section: SectionReader, common: CommonSettings): GoogleCloudSettings {
  return {
    ...common,
    provider: 'google',
    serviceAccountFile: section.optionalString(
      'ServiceAccountFile',
      'the path of a service-account JSON key file (omit it to use Application Default Credentials)',
    ),
    bucketName: section.requiredString('BucketName', 'the bucket name (non-empty string)'),
  };
}

function parseFileSystem(section: SectionReader, common: CommonSettings): FileSystemSettings {
  return {
    ...common,
    provider: 'filesystem',
    directory: section.requiredString('Directory', 'the directory where objects are stored (non-empty path)'),
  };
}
