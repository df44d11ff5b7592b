import type { ProviderSettings } from '../config/settings.js';
import { createEncryptedStorage } from '../crypto/index.js';
import { ConfigurationError } from '../errors.js';
import type { Logger } from '../logging.js';
import { BucketStorage } from './bucket-storage.js';
import type { BucketClient, ObjectStorage } from './contract.js';
import { FileSystemStorage } from './fs-storage.js';
import { HybridStorage } from './hybrid-storage.js';

/**
 * Build the full storage stack for validated settings: naming over the bucket client, hybrid
 * mode with Orthanc's own storage directory, and encryption (C1 or A1) over both sides when enabled
 * (as the C++ plugins do, so their encrypted hybrid files stay readable).
 * For the `filesystem` provider, pass `undefined` as client.
 */
export async function createObjectStorage(
  settings: ProviderSettings,
  client: BucketClient | undefined,
  log: Logger,
): Promise<ObjectStorage> {
  const layers: string[] = [];
  let storage: ObjectStorage;
  if (settings.provider === 'filesystem') {
    storage = new FileSystemStorage({ root: settings.directory, sync: settings.orthanc.syncStorageArea });
    layers.push(`file system ${settings.directory} (Orthanc layout)`);
  } else {
    if (client === undefined) {
      throw new ConfigurationError(
        `${settings.section}: internal error: no bucket client for provider ${settings.provider}`,
      );
    }
    storage = new BucketStorage(client, {
      rootPath: settings.rootPath,
      storageStructure: settings.storageStructure,
      encrypted: settings.encryption !== undefined,
      enableLegacyUnknownFiles: settings.enableLegacyUnknownFiles,
    });
    const root = settings.rootPath === '' ? 'bucket root' : `root path "${settings.rootPath}"`;
    const legacy = settings.enableLegacyUnknownFiles ? ', legacy .unk fallback' : '';
    layers.push(`${client.description} (${root}, ${settings.storageStructure} names${legacy})`);
  }

  if (settings.hybridMode !== 'Disabled') {
    // The file-system side is Orthanc's own layout; encryption (below) covers both sides, as in the C++ plugins.
    const fileSystem = new FileSystemStorage({
      root: settings.orthanc.storageDirectory,
      sync: settings.orthanc.syncStorageArea,
    });
    const fsName = `file system ${settings.orthanc.storageDirectory}`;
    const writeToFileSystem = settings.hybridMode === 'WriteToFileSystem';
    storage = new HybridStorage({
      primary: writeToFileSystem ? fileSystem : storage,
      secondary: writeToFileSystem ? storage : fileSystem,
      primaryName: writeToFileSystem ? fsName : 'object storage',
      secondaryName: writeToFileSystem ? 'object storage' : fsName,
      log,
    });
    layers.push(
      writeToFileSystem
        ? `hybrid WriteToFileSystem (writes to ${fsName}, reads it first, then object storage)`
        : `hybrid WriteToObjectStorage (writes to object storage, reads it first, then ${fsName})`,
    );
  }

  if (settings.encryption !== undefined) {
    storage = await createEncryptedStorage(storage, settings.encryption);
    const previous = settings.encryption.previousMasterKeys.map((key) => key.id);
    const format = settings.encryption.writeFormat ?? 'C1';
    layers.push(
      `encryption writing ${format}, reading C1 and A1 (master key id ${settings.encryption.masterKey.id}` +
        (previous.length > 0 ? `, previous key ids ${previous.join(', ')}` : '') +
        ')',
    );
  } else {
    layers.push('no encryption');
  }

  log.info(`${settings.section}: storage stack: ${layers.join(' + ')}`);
  return storage;
}
