// STUB (owner: config helper).
import type { StorageStructure } from '../config/settings.js';
import type { ObjectKey } from './contract.js';

export interface NamingOptions {
  readonly rootPath: string;
  readonly storageStructure: StorageStructure;
  readonly encrypted: boolean;
}

/** Object name in the bucket, identical to the C++ plugins'. Throws when the uuid is not an Orthanc uuid. */
export function objectName(_key: ObjectKey, _naming: NamingOptions): string {
  throw new Error('not implemented');
}
