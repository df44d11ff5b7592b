/** Typed, validated settings parsed from Orthanc's configuration JSON. */

export type StorageStructure = 'flat' | 'legacy';
export type HybridMode = 'Disabled' | 'WriteToFileSystem' | 'WriteToObjectStorage';
/** Format of new encrypted objects; both are always read. */
export type WriteFormat = 'C1' | 'A1';

/** `[id, path]` of a master key file. */
export interface MasterKeyRef {
  readonly id: number;
  readonly path: string;
}

export interface EncryptionSettings {
  /** `StorageEncryption.Enable` (default true when the section is present). */
  readonly enabled: boolean;
  /** `StorageEncryption.MasterKey`: the key new objects are encrypted with. */
  readonly masterKey: MasterKeyRef;
  /** `StorageEncryption.PreviousMasterKeys`: keys still accepted for decryption. */
  readonly previousMasterKeys: readonly MasterKeyRef[];
  /** `StorageEncryption.MaxConcurrentInputSize` in bytes (configured in MB, default 1024). */
  readonly maxConcurrentInputBytes: number;
  /** `StorageEncryption.WriteFormat` (ours): `C1` (default) or `A1` (readable by the C++ plugins). */
  readonly writeFormat?: WriteFormat;
}

/** Top-level Orthanc keys the plugins read. */
export interface OrthancSettings {
  /** `StorageDirectory` (default `OrthancStorage`). */
  readonly storageDirectory: string;
  /** `SyncStorageArea` (default true): fsync files the file-system backend writes. */
  readonly syncStorageArea: boolean;
  /** `HttpsCACertificates`: CA bundle path for HTTPS endpoints, if set. */
  readonly httpsCaCertificates: string | undefined;
}

/** Keys common to the three provider sections. */
export interface CommonSettings {
  /** Section name, for messages: `AwsS3Storage`, `AzureBlobStorage`, `BlobStorage` or `GoogleCloudStorage`. */
  readonly section: string;
  /** `RootPath` without leading or trailing `/`; `''` means the bucket root. */
  readonly rootPath: string;
  readonly storageStructure: StorageStructure;
  readonly enableLegacyUnknownFiles: boolean;
  readonly hybridMode: HybridMode;
  /** Undefined when there is no `StorageEncryption` section or `Enable` is false. */
  readonly encryption: EncryptionSettings | undefined;
  /** Bridge: `NodeExecutable` used by the native shim to start the gateway (read in C too). */
  readonly nodeExecutable: string | undefined;
  /** Bridge: `GatewayCallTimeout` in seconds: upper bound of one storage call through the shim. */
  readonly gatewayCallTimeoutSeconds: number;
  /**
   * Bridge: `GatewayWorkers`: worker threads of the gateway process, each serving its own share of
   * the shim's connections. Default: half the CPUs available to the process, 1 to 4.
   */
  readonly gatewayWorkers: number;
  readonly orthanc: OrthancSettings;
}

export type AwsStorageClass =
  | 'STANDARD'
  | 'REDUCED_REDUNDANCY'
  | 'STANDARD_IA'
  | 'ONEZONE_IA'
  | 'INTELLIGENT_TIERING'
  | 'GLACIER'
  | 'DEEP_ARCHIVE'
  | 'OUTPOSTS'
  | 'GLACIER_IR'
  | 'SNOW';

export type AwsChecksumMode = 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';

export interface AwsS3Settings extends CommonSettings {
  readonly provider: 'aws';
  readonly bucketName: string;
  readonly region: string;
  /** Both set, or both undefined (then the SDK's default credential chain). */
  readonly accessKey: string | undefined;
  readonly secretKey: string | undefined;
  readonly endpoint: string | undefined;
  readonly virtualAddressing: boolean;
  readonly connectionTimeoutSeconds: number;
  readonly requestTimeoutSeconds: number;
  readonly maxConnections: number;
  readonly maxRetries: number;
  readonly useTransferManager: boolean;
  readonly transferPoolSize: number;
  /** `TransferBufferSize` in bytes (configured in MB, default 5). */
  readonly transferBufferBytes: number;
  readonly storageClass: AwsStorageClass | undefined;
  readonly tags: Readonly<Record<string, string>>;
  readonly enableAwsSdkLogs: boolean;
  /** `RequestChecksumCalculation` (ours): default `WHEN_REQUIRED`, which S3-compatible stores accept. */
  readonly requestChecksumCalculation: AwsChecksumMode;
}

export type AzureAccessTier = 'Hot' | 'Cool' | 'Archive' | 'Premium' | 'Cold';

export interface AzureBlobSettings extends CommonSettings {
  readonly provider: 'azure';
  /** Trimmed connection string; undefined when `AccountUrl` (Azure AD) is used instead. */
  readonly connectionString: string | undefined;
  /** `AccountUrl` (ours): authenticate with the `@azure/identity` default chain. */
  readonly accountUrl: string | undefined;
  readonly containerName: string;
  readonly createContainerIfNotExists: boolean;
  readonly accessTier: AzureAccessTier | undefined;
}

export interface GoogleCloudSettings extends CommonSettings {
  readonly provider: 'google';
  /** Undefined means Application Default Credentials. */
  readonly serviceAccountFile: string | undefined;
  readonly bucketName: string;
}

/** Section `FileSystemObjectStorage` (ours, for tests and demos): core's file-system backend behind the bridge. */
export interface FileSystemSettings extends CommonSettings {
  readonly provider: 'filesystem';
  /** `Directory`: where objects go, in Orthanc's own `<2>/<2>/<uuid>` layout. */
  readonly directory: string;
}

export type ProviderSettings = AwsS3Settings | AzureBlobSettings | GoogleCloudSettings | FileSystemSettings;
export type ProviderId = ProviderSettings['provider'];
