import type { MasterKeyRef } from '../config/settings.js';
import { UsageError } from './command.js';

/**
 * Parse `--key ID:PATH`. The id is everything before the first `:`, so paths may contain `:`.
 * The id's range is checked when the key is loaded.
 */
export function parseKeyOption(value: string): MasterKeyRef {
  const colon = value.indexOf(':');
  const idText = colon < 0 ? '' : value.slice(0, colon);
  const path = colon < 0 ? '' : value.slice(colon + 1);
  if (!/^[0-9]+$/.test(idText) || path === '') {
    throw new UsageError(`--key must be ID:PATH with a numeric id, e.g. --key 1:/etc/orthanc/master.key`);
  }
  return { id: Number(idText), path };
}
