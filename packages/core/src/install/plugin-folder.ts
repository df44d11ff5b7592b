// What a plugin folder holds and how a user turns it on: shared by the artifact build (identity,
// the release README) and each provider's `install` command.
import { chmod, copyFile, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';

export type PluginProvider = 'aws' | 'azure' | 'google' | 'filesystem';

export interface PluginIdentity {
  /** The `.so` file name, the C++ plugin's. */
  readonly library: string;
  /** Name in Orthanc's /plugins. */
  readonly name: string;
  readonly section: string;
  readonly legacySection?: string;
  readonly description: string;
  /** A minimal section, with placeholders, that a user completes. */
  readonly minimalSection: Record<string, unknown>;
}

export const PLUGIN_IDENTITIES: Readonly<Record<PluginProvider, PluginIdentity>> = {
  aws: {
    library: 'libOrthancAwsS3Storage.so',
    name: 'AWS S3 Storage',
    section: 'AwsS3Storage',
    description: 'Stores the Orthanc storage area in AWS S3 (TypeScript gateway)',
    minimalSection: { BucketName: 'my-orthanc-bucket', Region: 'eu-west-1' },
  },
  azure: {
    library: 'libOrthancAzureBlobStorage.so',
    name: 'Azure Blob Storage',
    section: 'AzureBlobStorage',
    legacySection: 'BlobStorage',
    description: 'Stores the Orthanc storage area in Azure Blob Storage (TypeScript gateway)',
    minimalSection: {
      ConnectionString:
        'DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...;EndpointSuffix=core.windows.net',
      ContainerName: 'orthanc',
    },
  },
  google: {
    library: 'libOrthancGoogleCloudStorage.so',
    name: 'Google Cloud Storage',
    section: 'GoogleCloudStorage',
    description: 'Stores the Orthanc storage area in Google Cloud Storage (TypeScript gateway)',
    minimalSection: {
      BucketName: 'my-orthanc-bucket',
      ServiceAccountFile: '/etc/orthanc/gcs-service-account.json',
    },
  },
  filesystem: {
    library: 'libOrthancFileSystemObjectStorage.so',
    name: 'File System Object Storage',
    section: 'FileSystemObjectStorage',
    description: 'Stores the Orthanc storage area through the object-storage gateway on a local directory',
    minimalSection: { Directory: '/var/lib/orthanc/objects' },
  },
};

/** The files of a plugin folder besides the Node runtime. */
export const GATEWAY_FILE = 'gateway.mjs';
export const NOTICES_FILE = 'THIRD-PARTY-NOTICES.txt';
/** The runtime the shim looks for beside its library. */
export const RUNTIME_FILE = 'node';

/** How to turn the plugin on: the "Plugins" entry and a minimal section, as JSON to merge. */
export function enableInstructions(provider: PluginProvider, folder: string): string {
  const identity = PLUGIN_IDENTITIES[provider];
  const snippet = {
    Plugins: [path.join(folder, identity.library)],
    [identity.section]: identity.minimalSection,
  };
  return [
    `Add to Orthanc's configuration (merge "Plugins" with the entries you have; fill in the section):`,
    '',
    JSON.stringify(snippet, null, 2),
    '',
    `Every key of "${identity.section}" is in the configuration reference that the README of @orthanc-object-storage/${provider === 'filesystem' ? 'core' : provider} links.`,
    '',
  ].join('\n');
}

export interface InstallOptions {
  readonly provider: PluginProvider;
  /** The package's built plugin folder (library, gateway, notices). */
  readonly pluginDir: string;
  /** The Node runtime binary to ship beside them. */
  readonly nodeRuntime: string;
  readonly target: string;
}

/**
 * Writes a self-contained plugin folder: the library, the gateway, the notices and the runtime.
 * Each file is copied aside and renamed into place, so an Orthanc starting meanwhile never loads
 * a half-written library.
 */
export async function installPluginFolder(options: InstallOptions): Promise<string[]> {
  const identity = PLUGIN_IDENTITIES[options.provider];
  const files: [string, string, number][] = [
    [path.join(options.pluginDir, identity.library), identity.library, 0o755],
    [path.join(options.pluginDir, GATEWAY_FILE), GATEWAY_FILE, 0o644],
    [path.join(options.pluginDir, NOTICES_FILE), NOTICES_FILE, 0o644],
    [options.nodeRuntime, RUNTIME_FILE, 0o755],
  ];
  await mkdir(options.target, { recursive: true });
  const written: string[] = [];
  for (const [source, name, mode] of files) {
    const destination = path.join(options.target, name);
    const temporary = path.join(options.target, `.${name}.${process.pid}.partial`);
    try {
      await copyFile(source, temporary);
      await chmod(temporary, mode);
      await rename(temporary, destination);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    written.push(destination);
  }
  return written;
}

/** Names in a folder, for messages. */
export async function listFolder(folder: string): Promise<string[]> {
  return (await readdir(folder)).sort();
}
