import type { StorageStructure } from '../config/settings.js';
import { ObjectStorageError } from '../errors.js';
import { ContentType, type ObjectKey } from './contract.js';

export interface NamingOptions {
  /** Without leading or trailing `/`; `''` means the bucket root. */
  readonly rootPath: string;
  readonly storageStructure: StorageStructure;
  readonly encrypted: boolean;
}

/** What Orthanc generates: 36 chars, lowercase hex, dashes at 8, 13, 18 and 23. */
const ORTHANC_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isOrthancUuid(value: unknown): value is string {
  return typeof value === 'string' && ORTHANC_UUID.test(value);
}

/** Throws unless `uuid` is an Orthanc attachment uuid: no crafted name may escape the root. */
export function assertOrthancUuid(uuid: unknown): asserts uuid is string {
  if (!isOrthancUuid(uuid)) {
    const shown = typeof uuid === 'string' ? JSON.stringify(uuid.slice(0, 80)) : typeof uuid;
    throw new ObjectStorageError(
      `invalid attachment uuid ${shown}: expected an Orthanc uuid (36 characters, lowercase hex digits with dashes at positions 9, 14, 19 and 24)`,
    );
  }
}

function extensionOf(type: ContentType, legacyUnknownName: boolean): string {
  switch (type) {
    case ContentType.Dicom:
      return '.dcm';
    case ContentType.DicomAsJson:
      return '.json';
    case ContentType.DicomUntilPixelData:
      // Plugin versions 1.2.0 to 1.3.0 stored these headers as `.unk`.
      return legacyUnknownName ? '.unk' : '.dcm.head';
    default:
      return '.unk';
  }
}

function withRoot(rootPath: string, name: string): string {
  return rootPath === '' ? name : `${rootPath}/${name}`;
}

/** Object name in the bucket, identical to the C++ plugins'. Throws when the uuid is not an Orthanc uuid. */
export function objectName(key: ObjectKey, naming: NamingOptions): string {
  return nameFor(key, naming, false);
}

/**
 * The name the C++ plugins fall back to with `EnableLegacyUnknownFiles`: a DicomUntilPixelData
 * object under `.unk` (then `.enc` when encrypted). Undefined when it would equal `objectName`.
 */
export function legacyUnknownObjectName(key: ObjectKey, naming: NamingOptions): string | undefined {
  const name = nameFor(key, naming, true);
  return name === objectName(key, naming) ? undefined : name;
}

function nameFor(key: ObjectKey, naming: NamingOptions, legacyUnknownName: boolean): string {
  assertOrthancUuid(key.uuid);
  const { uuid } = key;
  if (naming.storageStructure === 'legacy') {
    // Orthanc's own layout; the C++ plugins add no extension, even when encrypted.
    return withRoot(naming.rootPath, `${uuid.slice(0, 2)}/${uuid.slice(2, 4)}/${uuid}`);
  }
  const encryption = naming.encrypted ? '.enc' : '';
  return withRoot(naming.rootPath, `${uuid}${extensionOf(key.type, legacyUnknownName)}${encryption}`);
}
