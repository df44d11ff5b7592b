// STUB (owner: crypto helper).
import type { EncryptionSettings } from '../config/settings.js';
import type { ObjectStorage } from '../storage/contract.js';

/** Bytes A1 adds to every object: "A1" + key id + EIV + EDEK + GCM tag. */
export const A1_OVERHEAD = 86;

/** Wrap a storage with A1 encryption: loads and checks the key files, bounds concurrent input. */
export async function createEncryptedStorage(
  _inner: ObjectStorage,
  _settings: EncryptionSettings,
): Promise<ObjectStorage> {
  throw new Error('not implemented');
}
