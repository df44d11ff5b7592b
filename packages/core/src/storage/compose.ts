import type { ProviderSettings } from '../config/settings.js';
import { createEncryptionLayer } from '../crypto/index.js';
import { ConfigurationError } from '../errors.js';
import type { Logger } from '../logging.js';
import { BucketStorage } from './bucket-storage.js';
import type { BucketClient, ObjectKey, ObjectStorage } from './contract.js';
import { FileSystemStorage } from './fs-storage.js';
import { HybridStorage } from './hybrid-storage.js';
import type { StoredObject } from './stored-object.js';

export type { StoredObject } from './stored-object.js';

/** A backend that can say where (and whether) it keeps an object, without reading it all. */
export interface InspectableStorage extends ObjectStorage {
  inspect(key: ObjectKey): Promise<StoredObject | undefined>;
}

export type StorageSideName = 'file-system' | 'object-storage';

/** One side of the storage: its plaintext view (encrypted when configured) and its raw backend. */
export interface StorageSide {
  readonly name: StorageSideName;
  readonly storage: ObjectStorage;
  readonly raw: InspectableStorage;
}

/** The stack Orthanc's calls go through, and each side on its own (for moves and "where is it"). */
export interface StorageStack {
  readonly storage: ObjectStorage;
  /** Object storage first; the file system too in hybrid mode. */
  readonly sides: readonly StorageSide[];
  readonly hybridMode: ProviderSettings['hybridMode'];
  readonly encrypted: boolean;
}

/**
 * Build the full storage stack for validated settings: naming over the bucket client, encryption
 * (C1 or A1) when enabled, and hybrid mode over both sides (each encrypted alike, as the C++
 * plugins do, so their encrypted hybrid files stay readable).
 * For the `filesystem` provider, pass `undefined` as client.
 */
export async function createStorageStack(
  settings: ProviderSettings,
  client: BucketClient | undefined,
  log: Logger,
): Promise<StorageStack> {
  const layers: string[] = [];
  let objectStorage: InspectableStorage;
  if (settings.provider === 'filesystem') {
    objectStorage = new FileSystemStorage({
      root: settings.directory,
      sync: settings.orthanc.syncStorageArea,
    });
    layers.push(`file system ${settings.directory} (Orthanc layout)`);
  } else {
    if (client === undefined) {
      throw new ConfigurationError(
        `${settings.section}: internal error: no bucket client for provider ${settings.provider}`,
      );
    }
    objectStorage = new BucketStorage(client, {
      rootPath: settings.rootPath,
      storageStructure: settings.storageStructure,
      encrypted: settings.encryption !== undefined,
      enableLegacyUnknownFiles: settings.enableLegacyUnknownFiles,
    });
    const root = settings.rootPath === '' ? 'bucket root' : `root path "${settings.rootPath}"`;
    const legacy = settings.enableLegacyUnknownFiles ? ', legacy .unk fallback' : '';
    layers.push(`${client.description} (${root}, ${settings.storageStructure} names${legacy})`);
  }

  let encrypt = (inner: ObjectStorage): ObjectStorage => inner;
  if (settings.encryption !== undefined) {
    encrypt = await createEncryptionLayer(settings.encryption);
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

  const sides: StorageSide[] = [
    { name: 'object-storage', storage: encrypt(objectStorage), raw: objectStorage },
  ];
  let storage = sides[0]!.storage;
  if (settings.hybridMode !== 'Disabled') {
    // The file-system side is Orthanc's own layout, encrypted like the object storage.
    const fileSystem = new FileSystemStorage({
      root: settings.orthanc.storageDirectory,
      sync: settings.orthanc.syncStorageArea,
    });
    const fsSide: StorageSide = { name: 'file-system', storage: encrypt(fileSystem), raw: fileSystem };
    sides.push(fsSide);
    const fsName = `file system ${settings.orthanc.storageDirectory}`;
    const writeToFileSystem = settings.hybridMode === 'WriteToFileSystem';
    storage = new HybridStorage({
      primary: writeToFileSystem ? fsSide.storage : storage,
      secondary: writeToFileSystem ? storage : fsSide.storage,
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

  log.info(`${settings.section}: storage stack: ${layers.join(' + ')}`);
  return {
    storage,
    sides,
    hybridMode: settings.hybridMode,
    encrypted: settings.encryption !== undefined,
  };
}

/** The storage Orthanc's calls go through (see createStorageStack). */
export async function createObjectStorage(
  settings: ProviderSettings,
  client: BucketClient | undefined,
  log: Logger,
): Promise<ObjectStorage> {
  return (await createStorageStack(settings, client, log)).storage;
}
