// Failures of the Azure AD path name the account and the container. A file of its own: the
// identity library caches tokens per process, and these tests need a fresh cache.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAzurite, type StartedAzurite } from '@orthanc-object-storage/servers';
import { ConfigurationError, type AzureBlobSettings } from '@orthanc-object-storage/core';
import { openAzureBucketClient } from './azure-bucket-client.js';
import {
  azureSettings,
  fakeStorageToken,
  quietLog,
  selfSignedCertificate,
  startTokenEndpoint,
  useManagedIdentityEndpoint,
  type TokenEndpoint,
} from './__tests__/fixtures.js';

let dir: string;
let azurite: StartedAzurite;
let tokenEndpoint: TokenEndpoint;
let restoreEnvironment: () => void;
let adSettings: AzureBlobSettings;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'oos-azure-ad-denied-'));
  const tls = await selfSignedCertificate(dir);
  azurite = await startAzurite({ tls, oauth: true });
  tokenEndpoint = await startTokenEndpoint(undefined);
  restoreEnvironment = useManagedIdentityEndpoint(tokenEndpoint);
  adSettings = azureSettings({
    accountUrl: azurite.blobEndpoint,
    containerName: 'ad-denied',
    orthanc: { storageDirectory: 'OrthancStorage', syncStorageArea: true, httpsCaCertificates: tls.certPath },
  });
});

afterAll(async () => {
  restoreEnvironment?.();
  await tokenEndpoint?.close();
  await azurite?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('Azure AD failures', () => {
  it('reports an identity that gets no token as a configuration error naming account and container', async () => {
    const failure = await openAzureBucketClient(adSettings, { log: quietLog }).catch(
      (error: unknown) => error,
    );
    expect(tokenEndpoint.requests.length).toBeGreaterThan(0);
    expect(failure).toBeInstanceOf(ConfigurationError);
    expect((failure as Error).message).toMatch(
      /^AzureBlobStorage: access denied to container "ad-denied" of storage account "devstoreaccount1"/,
    );
  });

  it('reports a token the storage refuses (403) naming account and container, never the token', async () => {
    const wrongAudience = fakeStorageToken({ audience: 'https://vault.azure.net' });
    tokenEndpoint.token = wrongAudience;
    const failure = await openAzureBucketClient(adSettings, { log: quietLog }).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ConfigurationError);
    const message = (failure as Error).message;
    expect(message).toMatch(
      /access denied to container "ad-denied" of storage account "devstoreaccount1" \(HTTP 403/,
    );
    expect(message).not.toContain(wrongAudience);
  });
});
