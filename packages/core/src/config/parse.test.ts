import { ConfigurationError } from '../errors.js';
import type { ProviderId } from './settings.js';
import {
  DEFAULT_GATEWAY_CALL_TIMEOUT_SECONDS,
  defaultGatewayWorkers,
  parseProviderSettings,
} from './parse.js';

const aws = (section: Record<string, unknown>, top: Record<string, unknown> = {}) =>
  parseProviderSettings('aws', {
    ...top,
    AwsS3Storage: { BucketName: 'b', Region: 'eu-west-1', ...section },
  });

function errorOf(run: () => unknown): ConfigurationError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return error as ConfigurationError;
  }
  throw new Error('expected a ConfigurationError');
}

describe('sections and defaults', () => {
  it('disables the plugin when its section is absent', () => {
    for (const provider of ['aws', 'azure', 'google', 'filesystem'] as const) {
      expect(parseProviderSettings(provider, { StorageDirectory: '/x' }).settings).toBeUndefined();
    }
  });

  it('refuses a configuration or a section that is not an object', () => {
    expect(errorOf(() => parseProviderSettings('aws', [])).message).toMatch(/JSON object/);
    expect(errorOf(() => parseProviderSettings('aws', { AwsS3Storage: 'x' })).message).toMatch(
      /"AwsS3Storage" must be a JSON object.*string/,
    );
  });

  it('applies every AWS and common default', () => {
    const { settings, warnings } = aws({});
    expect(warnings).toEqual([]);
    expect(settings).toEqual({
      provider: 'aws',
      section: 'AwsS3Storage',
      bucketName: 'b',
      region: 'eu-west-1',
      accessKey: undefined,
      secretKey: undefined,
      endpoint: undefined,
      virtualAddressing: true,
      connectionTimeoutSeconds: 30,
      requestTimeoutSeconds: 1200,
      maxConnections: 25,
      maxRetries: 10,
      useTransferManager: false,
      transferPoolSize: 10,
      transferBufferBytes: 5 * 1024 * 1024,
      storageClass: undefined,
      tags: {},
      enableAwsSdkLogs: false,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      rootPath: '',
      storageStructure: 'flat',
      enableLegacyUnknownFiles: false,
      hybridMode: 'Disabled',
      encryption: undefined,
      nodeExecutable: undefined,
      gatewayCallTimeoutSeconds: DEFAULT_GATEWAY_CALL_TIMEOUT_SECONDS,
      gatewayWorkers: defaultGatewayWorkers(),
      orthanc: { storageDirectory: 'OrthancStorage', syncStorageArea: true, httpsCaCertificates: undefined },
    });
  });

  it('reads every AWS key', () => {
    const { settings } = aws(
      {
        AccessKey: 'AK',
        SecretKey: 'SK',
        Endpoint: 'http://127.0.0.1:7480',
        VirtualAddressing: false,
        ConnectionTimeout: 5,
        RequestTimeout: 60,
        MaxConnections: 3,
        MaxRetries: 0,
        UseTransferManager: true,
        TransferPoolSize: 4,
        TransferBufferSize: 8,
        StorageClass: 'STANDARD_IA',
        Tags: { a: '1', b: '' },
        EnableAwsSdkLogs: true,
        RequestChecksumCalculation: 'WHEN_SUPPORTED',
        RootPath: 'orthanc/data/',
        StorageStructure: 'legacy',
        EnableLegacyUnknownFiles: true,
        HybridMode: 'WriteToFileSystem',
        NodeExecutable: '/usr/bin/node24',
        GatewayCallTimeout: 90,
        GatewayWorkers: 3,
      },
      { StorageDirectory: '/var/lib/orthanc/db', SyncStorageArea: false, HttpsCACertificates: '/etc/ca.pem' },
    );
    expect(settings).toMatchObject({
      accessKey: 'AK',
      secretKey: 'SK',
      endpoint: 'http://127.0.0.1:7480',
      virtualAddressing: false,
      connectionTimeoutSeconds: 5,
      requestTimeoutSeconds: 60,
      maxConnections: 3,
      maxRetries: 0,
      useTransferManager: true,
      transferPoolSize: 4,
      transferBufferBytes: 8 * 1024 * 1024,
      storageClass: 'STANDARD_IA',
      tags: { a: '1', b: '' },
      enableAwsSdkLogs: true,
      requestChecksumCalculation: 'WHEN_SUPPORTED',
      rootPath: 'orthanc/data',
      storageStructure: 'legacy',
      enableLegacyUnknownFiles: true,
      hybridMode: 'WriteToFileSystem',
      nodeExecutable: '/usr/bin/node24',
      gatewayCallTimeoutSeconds: 90,
      gatewayWorkers: 3,
      orthanc: {
        storageDirectory: '/var/lib/orthanc/db',
        syncStorageArea: false,
        httpsCaCertificates: '/etc/ca.pem',
      },
    });
  });

  it('accepts every storage class', () => {
    for (const storageClass of [
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
    ]) {
      expect(aws({ StorageClass: storageClass }).settings?.storageClass).toBe(storageClass);
    }
  });

  it('adds https:// to an endpoint given as host[:port], as the C++ SDK does', () => {
    expect(aws({ Endpoint: 's3.example.org:9000' }).settings?.endpoint).toBe('https://s3.example.org:9000');
  });
});

describe("Orthanc's top-level keys, with Orthanc's meaning", () => {
  const top = (values: Record<string, unknown>, baseDirectory?: string) =>
    parseProviderSettings(
      'aws',
      { ...values, AwsS3Storage: { BucketName: 'b', Region: 'eu-west-1' } },
      baseDirectory === undefined ? {} : { baseDirectory },
    ).settings!.orthanc;

  it('reads "HttpsCACertificates": "" (in Orthanc\'s default configuration) as no CA bundle', () => {
    expect(top({ HttpsCACertificates: '' }).httpsCaCertificates).toBeUndefined();
    expect(top({}).httpsCaCertificates).toBeUndefined();
  });

  it('refuses an HttpsCACertificates that is not a string', () => {
    expect(errorOf(() => top({ HttpsCACertificates: false })).message).toMatch(
      /"HttpsCACertificates" has value false; allowed: the path of a CA bundle file, or "" for none/,
    );
  });

  it("resolves relative paths against the configuration's folder, as Orthanc does", () => {
    const settings = top(
      { StorageDirectory: 'OrthancStorage', HttpsCACertificates: 'ca/bundle.pem' },
      '/etc/orthanc',
    );
    expect(settings.storageDirectory).toBe('/etc/orthanc/OrthancStorage');
    expect(settings.httpsCaCertificates).toBe('/etc/orthanc/ca/bundle.pem');
    expect(top({}, '/srv/conf').storageDirectory).toBe('/srv/conf/OrthancStorage');
    const absolute = top(
      { StorageDirectory: '/var/lib/orthanc/db', HttpsCACertificates: '/etc/ssl/ca.pem' },
      '/x',
    );
    expect(absolute.storageDirectory).toBe('/var/lib/orthanc/db');
    expect(absolute.httpsCaCertificates).toBe('/etc/ssl/ca.pem');
  });

  it('keeps relative paths as given when the configuration path is unknown', () => {
    expect(top({ StorageDirectory: 'OrthancStorage' }).storageDirectory).toBe('OrthancStorage');
  });
});

describe('error messages name section, key, value and what is allowed', () => {
  it.each([
    [
      { StorageClass: 'standard' },
      /"AwsS3Storage" key "StorageClass" has value "standard"; allowed: one of STANDARD, .*SNOW/,
    ],
    [{ StorageStructure: 'Flat' }, /"StorageStructure" has value "Flat"; allowed: one of flat, legacy/],
    [
      { HybridMode: 'Yes' },
      /"HybridMode" has value "Yes"; allowed: one of Disabled, WriteToFileSystem, WriteToObjectStorage/,
    ],
    [{ VirtualAddressing: 'false' }, /"VirtualAddressing" has value "false"; allowed: true or false/],
    [{ ConnectionTimeout: 0 }, /"ConnectionTimeout" has value 0; allowed: an integer from 1 to \d+ seconds/],
    [{ RequestTimeout: 1.5 }, /"RequestTimeout" has value 1.5; allowed: an integer/],
    [{ MaxConnections: '25' }, /"MaxConnections" has value "25"/],
    [{ MaxRetries: -1 }, /"MaxRetries" has value -1; allowed: an integer from 0 to 100/],
    [{ TransferBufferSize: 4 }, /"TransferBufferSize" has value 4; allowed: an integer from 5 to 5120 MB/],
    [{ TransferPoolSize: 0 }, /"TransferPoolSize" has value 0/],
    [{ Tags: { a: 1 } }, /"Tags" has value \{"a":1\}; allowed: an object of at most 10 string tags/],
    [{ Tags: ['a'] }, /"Tags" has value \["a"\]/],
    [
      { RequestChecksumCalculation: 'ALWAYS' },
      /"RequestChecksumCalculation" has value "ALWAYS"; allowed: one of WHEN_REQUIRED, WHEN_SUPPORTED/,
    ],
    [{ Endpoint: 'ftp://x' }, /"Endpoint" has value "ftp:\/\/x"; allowed: an http:\/\/ or https:\/\/ URL/],
    [{ Endpoint: '' }, /"Endpoint" has value ""/],
    [{ BucketName: '' }, /"BucketName" has value ""; allowed: the bucket name/],
    [{ BucketName: undefined }, /"BucketName" has value undefined|"BucketName"/],
    [
      { GatewayCallTimeout: 0 },
      /"GatewayCallTimeout" has value 0; allowed: an integer from 1 to \d+ seconds, default 1800/,
    ],
    [
      { GatewayWorkers: 0 },
      /"GatewayWorkers" has value 0; allowed: an integer from 1 to 64 worker threads \(default: half the CPUs available, 1 to 4\)/,
    ],
    [{ GatewayWorkers: 65 }, /"GatewayWorkers" has value 65; allowed: an integer from 1 to 64/],
    [{ GatewayWorkers: 'auto' }, /"GatewayWorkers" has value "auto"/],
    [{ GatewayWorkers: 1.5 }, /"GatewayWorkers" has value 1.5/],
    [{ NodeExecutable: 7 }, /"NodeExecutable" has value 7/],
    [{ EnableLegacyUnknownFiles: 1 }, /"EnableLegacyUnknownFiles" has value 1; allowed: true or false/],
  ])('%j', (section, message) => {
    expect(errorOf(() => aws(section)).message).toMatch(message);
  });

  it('names a missing required key', () => {
    expect(errorOf(() => parseProviderSettings('aws', { AwsS3Storage: { Region: 'r' } })).message).toMatch(
      /"AwsS3Storage" key "BucketName" is required; allowed: /,
    );
    expect(
      errorOf(() => parseProviderSettings('aws', { AwsS3Storage: { BucketName: 'b' } })).message,
    ).toMatch(/"Region" is required/);
  });

  it('checks top-level keys', () => {
    expect(errorOf(() => aws({}, { SyncStorageArea: 'yes' })).message).toMatch(
      /"\(top level\)" key "SyncStorageArea" has value "yes"/,
    );
    expect(errorOf(() => aws({}, { StorageDirectory: '' })).message).toMatch(
      /"StorageDirectory" has value ""/,
    );
  });

  it('is case-sensitive on keys: a wrongly cased key is unknown and the default applies', () => {
    const { settings, warnings } = aws({ storageClass: 'GLACIER', bucketname: 'x' });
    expect(settings?.storageClass).toBeUndefined();
    expect(warnings[0]).toMatch(
      /unknown key\(s\) "storageClass" \(did you mean "StorageClass"\? keys are case-sensitive\)/,
    );
    expect(warnings[0]).toMatch(/"bucketname" \(did you mean "BucketName"\?/);
    expect(warnings[0]).toMatch(/known keys: RootPath, .*BucketName, Region, .*RequestChecksumCalculation/);
  });

  it('warns about unknown keys, listing the known ones', () => {
    const { warnings } = aws({ Bucket: 'x' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/"AwsS3Storage": unknown key\(s\) "Bucket" ignored; known keys: /);
  });
});

describe('secrets are never echoed', () => {
  const secret = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';
  it.each([
    ['AccessKey', () => aws({ AccessKey: secret })],
    ['SecretKey', () => aws({ SecretKey: secret })],
    ['SecretKey', () => aws({ AccessKey: 'AK', SecretKey: 42 })],
    ['AccessKey', () => aws({ AccessKey: '', SecretKey: secret })],
    [
      'ConnectionString',
      () =>
        parseProviderSettings('azure', { AzureBlobStorage: { ConnectionString: 5, ContainerName: 'c1c' } }),
    ],
    [
      'AccountKey',
      () =>
        parseProviderSettings('azure', {
          BlobStorage: { AccountName: 'acct', AccountKey: `${secret};x=y`, ContainerName: 'cont' },
        }),
    ],
  ])('%s', (key, run) => {
    const message = errorOf(run).message;
    expect(message).toContain(`"${key}"`);
    expect(message).not.toContain(secret);
    expect(message).not.toContain('42');
    if (!/is required|missing/.test(message)) expect(message).toContain('<redacted>');
  });

  it('requires AccessKey and SecretKey together', () => {
    expect(errorOf(() => aws({ AccessKey: 'AK' })).message).toMatch(
      /"AccessKey" and "SecretKey" together, or neither.*"SecretKey" is missing/,
    );
    expect(errorOf(() => aws({ SecretKey: 'SK' })).message).toMatch(/"AccessKey" is missing/);
  });
});

describe('ConnectTimeout alias', () => {
  it('accepts either name', () => {
    expect(aws({ ConnectTimeout: 7 }).settings?.connectionTimeoutSeconds).toBe(7);
    expect(aws({ ConnectionTimeout: 8 }).settings?.connectionTimeoutSeconds).toBe(8);
    expect(aws({ ConnectionTimeout: 9, ConnectTimeout: 9 }).settings?.connectionTimeoutSeconds).toBe(9);
  });
  it('refuses two different values', () => {
    expect(errorOf(() => aws({ ConnectionTimeout: 9, ConnectTimeout: 10 })).message).toMatch(
      /"ConnectTimeout" has value 10; allowed: the same value as "ConnectionTimeout" \(9\)/,
    );
  });
});

describe('RootPath', () => {
  it.each([
    ['', ''],
    ['a', 'a'],
    ['a/', 'a'],
    ['a/b/c', 'a/b/c'],
  ])('%j -> %j', (given, expected) => {
    expect(aws({ RootPath: given }).settings?.rootPath).toBe(expected);
  });
  it.each(['/a', '/', 'a//b', 'a//', './a', 'a/../b', '..', 'a\nb', 3])('refuses %j', (given) => {
    expect(errorOf(() => aws({ RootPath: given })).message).toMatch(
      /"RootPath" has value .*must|not starting with "\/"/,
    );
  });
});

describe('HybridMode and the deprecated MigrationFromFileSystemEnabled', () => {
  it('maps MigrationFromFileSystemEnabled: true to WriteToObjectStorage, with a warning', () => {
    const { settings, warnings } = aws({ MigrationFromFileSystemEnabled: true });
    expect(settings?.hybridMode).toBe('WriteToObjectStorage');
    expect(warnings.join()).toMatch(
      /"MigrationFromFileSystemEnabled" is deprecated.*"HybridMode": "WriteToObjectStorage"/,
    );
  });
  it('lets an explicit HybridMode win, with a warning', () => {
    const { settings, warnings } = aws({
      MigrationFromFileSystemEnabled: true,
      HybridMode: 'WriteToFileSystem',
    });
    expect(settings?.hybridMode).toBe('WriteToFileSystem');
    expect(warnings.join()).toMatch(/ignored because "HybridMode" is "WriteToFileSystem"/);
  });
  it('false changes nothing', () => {
    expect(aws({ MigrationFromFileSystemEnabled: false }).settings?.hybridMode).toBe('Disabled');
  });
});

describe('StorageEncryption', () => {
  const enc = (encryption: unknown) => aws({ StorageEncryption: encryption });
  it('is enabled by default when the section is present', () => {
    expect(enc({ MasterKey: [3, '/k/3.key'] }).settings?.encryption).toEqual({
      enabled: true,
      masterKey: { id: 3, path: '/k/3.key' },
      previousMasterKeys: [],
      maxConcurrentInputBytes: 1024 * 1024 * 1024,
      writeFormat: 'C1',
    });
  });
  it('reads WriteFormat: C1 or A1, nothing else', () => {
    expect(enc({ MasterKey: [3, '/k/3.key'], WriteFormat: 'A1' }).settings?.encryption?.writeFormat).toBe(
      'A1',
    );
    expect(enc({ MasterKey: [3, '/k/3.key'], WriteFormat: 'C1' }).settings?.encryption?.writeFormat).toBe(
      'C1',
    );
    expect(() => enc({ MasterKey: [3, '/k/3.key'], WriteFormat: 'c1' })).toThrow(
      /"WriteFormat" has value "c1"; allowed: one of C1, A1/,
    );
  });
  it('reads previous keys and MaxConcurrentInputSize in MB', () => {
    const settings = enc({
      Enable: true,
      MasterKey: [4000000000, '/k/big.key'],
      PreviousMasterKeys: [
        [1, '/k/1.key'],
        [2, '/k/2.key'],
      ],
      MaxConcurrentInputSize: 16,
    }).settings;
    expect(settings?.encryption?.masterKey).toEqual({ id: 4000000000, path: '/k/big.key' });
    expect(settings?.encryption?.previousMasterKeys).toEqual([
      { id: 1, path: '/k/1.key' },
      { id: 2, path: '/k/2.key' },
    ]);
    expect(settings?.encryption?.maxConcurrentInputBytes).toBe(16 * 1024 * 1024);
  });
  it('Enable: false means no encryption, and MasterKey is then not required', () => {
    expect(enc({ Enable: false }).settings?.encryption).toBeUndefined();
  });
  it.each([
    [{}, /"AwsS3Storage.StorageEncryption" key "MasterKey" is required/],
    [{ MasterKey: 'k' }, /"MasterKey" has value "k"; allowed: \[id, "path"\]/],
    [{ MasterKey: [1] }, /"MasterKey" has value \[1\]/],
    [{ MasterKey: [-1, '/k'] }, /"MasterKey" has value \[-1,"\/k"\]/],
    [{ MasterKey: [4294967296, '/k'] }, /"MasterKey" has value \[4294967296,"\/k"\]/],
    [{ MasterKey: [1, ''] }, /"MasterKey" has value \[1,""\]/],
    [
      { MasterKey: [1, '/k'], PreviousMasterKeys: [1, '/p'] },
      /"PreviousMasterKeys" has value \[1,"\/p"\]; allowed: a list of/,
    ],
    [{ MasterKey: [1, '/k'], PreviousMasterKeys: [[1, '/p']] }, /distinct key ids: id 1 is given twice/],
    [{ MasterKey: [1, '/k'], PreviousMasterKeys: {} }, /"PreviousMasterKeys" has value \{\}/],
    [
      { MasterKey: [1, '/k'], MaxConcurrentInputSize: 0 },
      /"MaxConcurrentInputSize" has value 0; allowed: an integer from 1 to \d+ MB, default 1024/,
    ],
    [{ MasterKey: [1, '/k'], Enable: 'true' }, /"Enable" has value "true"/],
  ])('%j', (section, message) => {
    expect(errorOf(() => enc(section)).message).toMatch(message);
  });
  it('refuses a section that is not an object', () => {
    expect(errorOf(() => enc(true)).message).toMatch(
      /"StorageEncryption" has value true; allowed: a JSON object/,
    );
  });
  it('warns about unknown keys inside it', () => {
    expect(enc({ MasterKey: [1, '/k'], Masterkey: 1 }).warnings.join()).toMatch(
      /"AwsS3Storage.StorageEncryption": unknown key\(s\) "Masterkey" \(did you mean "MasterKey"/,
    );
  });
});

describe('AzureBlobStorage', () => {
  const azure = (section: Record<string, unknown>) =>
    parseProviderSettings('azure', { AzureBlobStorage: { ContainerName: 'orthanc', ...section } });

  it('trims the connection string of whitespace, CR and LF and applies defaults', () => {
    const { settings } = azure({
      ConnectionString: '  DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k==\r\n',
    });
    expect(settings).toMatchObject({
      provider: 'azure',
      section: 'AzureBlobStorage',
      connectionString: 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k==',
      accountUrl: undefined,
      containerName: 'orthanc',
      createContainerIfNotExists: true,
      accessTier: undefined,
    });
  });
  it('accepts AccountUrl instead (Azure AD)', () => {
    const { settings } = azure({
      AccountUrl: 'https://acct.blob.core.windows.net',
      AccessTier: 'Cool',
      CreateContainerIfNotExists: false,
    });
    expect(settings).toMatchObject({
      connectionString: undefined,
      accountUrl: 'https://acct.blob.core.windows.net',
      accessTier: 'Cool',
      createContainerIfNotExists: false,
    });
  });
  it('needs exactly one of ConnectionString and AccountUrl', () => {
    expect(errorOf(() => azure({})).message).toMatch(
      /exactly one of "ConnectionString" .* and "AccountUrl".*neither/,
    );
    expect(errorOf(() => azure({ ConnectionString: 'a=b', AccountUrl: 'https://x' })).message).toMatch(
      /both are given/,
    );
  });
  it('refuses a connection string of blanks, without echoing it', () => {
    const message = errorOf(() => azure({ ConnectionString: ' \r\n' })).message;
    expect(message).toMatch(/"ConnectionString" has value <redacted>/);
  });
  it('refuses an AccountUrl with a query (SAS) without echoing it', () => {
    const message = errorOf(() =>
      azure({ AccountUrl: 'https://acct.blob.core.windows.net/?sig=SECRETSIG' }),
    ).message;
    expect(message).toMatch(/AccountUrl/);
    expect(message).not.toContain('SECRETSIG');
  });
  it.each(['Hot', 'Cool', 'Archive', 'Premium', 'Cold'])('accepts tier %s', (tier) => {
    expect(azure({ ConnectionString: 'a=b', AccessTier: tier }).settings?.accessTier).toBe(tier);
  });
  it('refuses an unknown tier and a bad container name', () => {
    expect(errorOf(() => azure({ ConnectionString: 'a=b', AccessTier: 'hot' })).message).toMatch(
      /"AccessTier" has value "hot"; allowed: one of Hot, Cool, Archive, Premium, Cold/,
    );
    expect(errorOf(() => azure({ ConnectionString: 'a=b', ContainerName: 'Bad_Name' })).message).toMatch(
      /"ContainerName" has value "Bad_Name"; allowed: an Azure container name/,
    );
  });
  it('trims the container name', () => {
    expect(azure({ ConnectionString: 'a=b', ContainerName: ' orthanc\n' }).settings?.containerName).toBe(
      'orthanc',
    );
  });
});

describe('legacy BlobStorage section', () => {
  it('builds a connection string from AccountName and AccountKey', () => {
    const { settings, warnings } = parseProviderSettings('azure', {
      BlobStorage: { AccountName: 'acct', AccountKey: 'a2V5', ContainerName: 'cont', RootPath: 'r' },
    });
    expect(settings).toMatchObject({
      section: 'BlobStorage',
      connectionString: 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5',
      containerName: 'cont',
      rootPath: 'r',
      createContainerIfNotExists: true,
    });
    expect(warnings.join()).toMatch(/"BlobStorage" is the old section/);
  });
  it('accepts our BlobEndpoint, e.g. for Azurite', () => {
    const { settings } = parseProviderSettings('azure', {
      BlobStorage: {
        AccountName: 'devstoreaccount1',
        AccountKey: 'a2V5',
        ContainerName: 'cont',
        BlobEndpoint: 'http://127.0.0.1:10000/devstoreaccount1',
      },
    });
    expect(settings?.connectionString).toBe(
      'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1',
    );
  });
  it('prefers AzureBlobStorage when both are present', () => {
    const { settings, warnings } = parseProviderSettings('azure', {
      AzureBlobStorage: { ConnectionString: 'a=b', ContainerName: 'new' },
      BlobStorage: { AccountName: 'acct', AccountKey: 'a2V5', ContainerName: 'old' },
    });
    expect(settings?.containerName).toBe('new');
    expect(warnings.join()).toMatch(/"BlobStorage" is ignored because "AzureBlobStorage" is present/);
  });
  it('names a missing key', () => {
    expect(
      errorOf(() =>
        parseProviderSettings('azure', { BlobStorage: { AccountName: 'acct', ContainerName: 'cont' } }),
      ).message,
    ).toMatch(/"BlobStorage" key "AccountKey" is required/);
  });
});

describe('GoogleCloudStorage and FileSystemObjectStorage', () => {
  it('reads GoogleCloudStorage', () => {
    expect(
      parseProviderSettings('google', {
        GoogleCloudStorage: { BucketName: 'b', ServiceAccountFile: '/sa.json' },
      }).settings,
    ).toMatchObject({ provider: 'google', bucketName: 'b', serviceAccountFile: '/sa.json' });
    expect(
      parseProviderSettings('google', { GoogleCloudStorage: { BucketName: 'b' } }).settings
        ?.serviceAccountFile,
    ).toBeUndefined();
    expect(errorOf(() => parseProviderSettings('google', { GoogleCloudStorage: {} })).message).toMatch(
      /"GoogleCloudStorage" key "BucketName" is required/,
    );
  });
  it('reads FileSystemObjectStorage', () => {
    expect(
      parseProviderSettings('filesystem', { FileSystemObjectStorage: { Directory: '/d' } }).settings,
    ).toMatchObject({
      provider: 'filesystem',
      section: 'FileSystemObjectStorage',
      directory: '/d',
    });
    expect(
      errorOf(() => parseProviderSettings('filesystem', { FileSystemObjectStorage: {} })).message,
    ).toMatch(/"FileSystemObjectStorage" key "Directory" is required/);
  });
});

describe('GatewayWorkers, in every provider section', () => {
  const sections: [ProviderId, string, Record<string, unknown>][] = [
    ['aws', 'AwsS3Storage', { BucketName: 'b', Region: 'eu-west-1' }],
    ['azure', 'AzureBlobStorage', { ConnectionString: 'UseDevelopmentStorage=true', ContainerName: 'c1c' }],
    ['azure', 'BlobStorage', { AccountName: 'acct', AccountKey: 'a2V5', ContainerName: 'cont' }],
    ['google', 'GoogleCloudStorage', { BucketName: 'b' }],
    ['filesystem', 'FileSystemObjectStorage', { Directory: '/tmp/objects' }],
  ];

  it.each(sections)(
    '%s %s reads it, defaults to half the CPUs available (1 to 4)',
    (provider, name, required) => {
      const read = (extra: Record<string, unknown>) =>
        parseProviderSettings(provider, { [name]: { ...required, ...extra } }).settings!.gatewayWorkers;
      expect(read({ GatewayWorkers: 3 })).toBe(3);
      expect(read({ GatewayWorkers: 64 })).toBe(64);
      expect(read({})).toBe(defaultGatewayWorkers());
      expect(defaultGatewayWorkers()).toBeGreaterThanOrEqual(1);
      expect(defaultGatewayWorkers()).toBeLessThanOrEqual(4);
      expect(errorOf(() => read({ GatewayWorkers: 0 })).message).toContain(
        `"${name}" key "GatewayWorkers" has value 0; allowed: an integer from 1 to 64 worker threads`,
      );
    },
  );
});
