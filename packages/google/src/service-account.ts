import { readFile } from 'node:fs/promises';
import { ConfigurationError } from '@orthanc-object-storage/core';

/** The fields of a service-account key file the SDK needs (the private key is a secret: never logged). */
export interface ServiceAccountKey {
  readonly type: 'service_account';
  readonly client_email: string;
  readonly private_key: string;
  readonly project_id?: string;
  readonly [field: string]: unknown;
}

const EXPECTED =
  'a service-account key file (JSON with "type": "service_account", "client_email" and "private_key") as created in the Google Cloud console';

/**
 * Read and check `ServiceAccountFile`. Every failure is a ConfigurationError naming the key and the
 * path; none quotes the file's content (it holds a private key).
 */
export async function loadServiceAccountFile(section: string, file: string): Promise<ServiceAccountKey> {
  const where = `${section}.ServiceAccountFile: ${file}`;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES' || code === 'EPERM'
          ? 'cannot be read (permission denied for the Orthanc user)'
          : code === 'EISDIR'
            ? 'is a directory'
            : `cannot be read (${code ?? 'unknown error'})`;
    throw new ConfigurationError(`${where} ${reason}; expected ${EXPECTED}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigurationError(`${where} is not valid JSON; expected ${EXPECTED}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigurationError(`${where} is not a JSON object; expected ${EXPECTED}`);
  }
  const key = parsed as Record<string, unknown>;
  if (key.type !== 'service_account') {
    const given = typeof key.type === 'string' ? `"${key.type}"` : 'missing';
    throw new ConfigurationError(
      `${where} has "type" ${given}; expected "service_account". For other credential types (workload identity, ` +
        'external accounts, gcloud user credentials) leave ServiceAccountFile unset: Application Default Credentials are used',
    );
  }
  const missing = ['client_email', 'private_key'].filter(
    (field) => typeof key[field] !== 'string' || key[field] === '',
  );
  if (missing.length > 0) {
    throw new ConfigurationError(
      `${where} lacks ${missing.map((f) => `"${f}"`).join(' and ')}; expected ${EXPECTED}`,
    );
  }
  return key as ServiceAccountKey;
}
