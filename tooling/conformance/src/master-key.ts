import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EncryptionSettings, MasterKeyRef } from '@orthanc-object-storage/core';

/** Write a fresh master key as `openssl rand -base64 32` does (mode 0600) and return its reference. */
export async function writeTestMasterKey(dir: string, id: number): Promise<MasterKeyRef> {
  const path = join(dir, `master-key-${id}.b64`);
  await writeFile(path, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  return { id, path };
}

/** Encryption settings with one fresh master key in `dir`, as parsed from a `StorageEncryption` section. */
export async function testEncryptionSettings(dir: string, id = 1): Promise<EncryptionSettings> {
  return {
    enabled: true,
    masterKey: await writeTestMasterKey(dir, id),
    previousMasterKeys: [],
    maxConcurrentInputBytes: 1024 * 1024 * 1024,
  };
}
