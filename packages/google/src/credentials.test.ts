import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import { ConfigurationError, ObjectStorageError } from '@orthanc-object-storage/core';
import { startGcsEmulator, type StartedGcsEmulator } from '@orthanc-object-storage/servers';
import { createGcsBucketClient } from './gcs-bucket-client.js';
import {
  bodyOf,
  fakeServiceAccountKey,
  googleSettings,
  readAll,
  startFakeMetadataServer,
} from './__tests__/fixtures.js';

const TOKEN = 'test-access-token-from-metadata';
let folder: string;
let emulator: StartedGcsEmulator;
let metadata: { host: string; paths: string[]; server: Server };
const savedEnv = { ...process.env };

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'oos-google-cred-'));
  // The emulator refuses any request without this bearer token, as GCS refuses unauthenticated ones.
  emulator = await startGcsEmulator({ buckets: ['orthanc-test'], requiredBearerToken: TOKEN });
  metadata = await startFakeMetadataServer(TOKEN);
  // ADC sources, all on loopback: no gcloud file (HOME is empty), no GOOGLE_APPLICATION_CREDENTIALS,
  // the metadata server (as GKE workload identity serves it) at our fake.
  delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
  delete process.env.STORAGE_EMULATOR_HOST;
  process.env.HOME = folder;
  process.env.CLOUDSDK_CONFIG = path.join(folder, 'gcloud');
  process.env.GCE_METADATA_HOST = metadata.host;
  process.env.METADATA_SERVER_DETECTION = 'ping-only';
});

afterAll(async () => {
  process.env = savedEnv;
  metadata?.server.close();
  await emulator?.stop();
  await rm(folder, { recursive: true, force: true });
});

describe('ServiceAccountFile', () => {
  it('names the path when the file is missing', async () => {
    const file = path.join(folder, 'absent.json');
    const error = await createGcsBucketClient(googleSettings({ serviceAccountFile: file })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toContain(
      `GoogleCloudStorage.ServiceAccountFile: ${file} does not exist`,
    );
  });

  it('names the path when the file cannot be read', async () => {
    if (process.getuid?.() === 0) return; // root reads anything: the mode cannot be tested
    const file = path.join(folder, 'unreadable.json');
    await writeFile(file, JSON.stringify(fakeServiceAccountKey()));
    await chmod(file, 0o000);
    await expect(createGcsBucketClient(googleSettings({ serviceAccountFile: file }))).rejects.toThrow(
      new RegExp(`${file} cannot be read`),
    );
  });

  it('names the path when it is a directory', async () => {
    await expect(createGcsBucketClient(googleSettings({ serviceAccountFile: folder }))).rejects.toThrow(
      `ServiceAccountFile: ${folder} is a directory`,
    );
  });

  it('refuses invalid JSON without quoting the content', async () => {
    const file = path.join(folder, 'broken.json');
    await writeFile(file, '{"private_key": "-----BEGIN PRIVATE KEY-----SECRETSECRET');
    const error = (await createGcsBucketClient(googleSettings({ serviceAccountFile: file })).catch(
      (e: unknown) => e,
    )) as Error;
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toContain(`${file} is not valid JSON`);
    expect(error.message).not.toContain('SECRET');
  });

  it('refuses a file that is not a service-account key, saying what is expected', async () => {
    const file = path.join(folder, 'user.json');
    await writeFile(file, JSON.stringify({ type: 'authorized_user', client_secret: 'SECRETSECRET' }));
    const error = (await createGcsBucketClient(googleSettings({ serviceAccountFile: file })).catch(
      (e: unknown) => e,
    )) as Error;
    expect(error.message).toMatch(/"type" "authorized_user"; expected "service_account"/);
    expect(error.message).not.toContain('SECRET');
  });

  it('refuses a key without private_key', async () => {
    const file = path.join(folder, 'nokey.json');
    const { private_key: _omitted, ...rest } = fakeServiceAccountKey();
    await writeFile(file, JSON.stringify(rest));
    await expect(createGcsBucketClient(googleSettings({ serviceAccountFile: file }))).rejects.toThrow(
      /lacks "private_key"/,
    );
  });

  it('signs with the key of the file, not ADC', async () => {
    const file = path.join(folder, 'key.json');
    const key = fakeServiceAccountKey('file-account@demo-orthanc.iam.gserviceaccount.com');
    await writeFile(file, JSON.stringify(key));
    const logged: string[] = [];
    const client = await createGcsBucketClient(googleSettings({ serviceAccountFile: file }), {
      apiEndpoint: emulator.apiEndpoint,
      log: { info: (m) => logged.push(m), warn() {}, error() {} },
    });
    expect(client.credentialSource).toBe('service-account-file');
    const auth = (await client.storage.authClient.getClient()) as unknown as { email?: string; key?: string };
    expect(auth.email).toBe(key.client_email);
    expect(auth.key).toBe(key.private_key);
    expect(logged.join('\n')).toContain('file-account@demo-orthanc.iam.gserviceaccount.com');
    expect(logged.join('\n')).not.toContain('PRIVATE KEY');
  });
});

describe('Application Default Credentials (no ServiceAccountFile)', () => {
  it('takes the token from the metadata server (GKE workload identity) and works', async () => {
    const client = await createGcsBucketClient(googleSettings(), {
      apiEndpoint: emulator.apiEndpoint,
      authenticateEndpoint: true,
    });
    expect(client.credentialSource).toBe('application-default');
    await client.put('adc.dcm', 3, bodyOf(Buffer.from('adc')));
    const read = await client.get('adc.dcm');
    expect((await readAll(read.body)).toString()).toBe('adc');
    expect(
      metadata.paths.some((p) => p.startsWith('/computeMetadata/v1/instance/service-accounts/default/token')),
    ).toBe(true);
  });

  it('without credentials the request is refused (401) and the error names the bucket', async () => {
    const client = await createGcsBucketClient(googleSettings(), { apiEndpoint: emulator.apiEndpoint });
    const error = (await client.get('adc.dcm').catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(ObjectStorageError);
    expect(error.message).toMatch(/authentication failed for bucket orthanc-test/);
  });
});
