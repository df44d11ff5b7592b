// Azure AD path with no cloud: AccountUrl + DefaultAzureCredential, whose managed-identity step
// (App Service: IDENTITY_ENDPOINT + IDENTITY_HEADER) gets its token from a loopback endpoint;
// Azurite over https with OAuth checks the bearer token; HttpsCACertificates makes its certificate trusted.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { startAzurite, type StartedAzurite } from '@orthanc-object-storage/servers';
import { ConfigurationError, ObjectStorageError, type AzureBlobSettings } from '@orthanc-object-storage/core';
import { openAzureBucketClient } from './azure-bucket-client.js';
import {
  azureSettings,
  fakeStorageToken,
  quietLog,
  readAll,
  selfSignedCertificate,
  startTokenEndpoint,
  useManagedIdentityEndpoint,
  type TokenEndpoint,
} from './__tests__/fixtures.js';

let dir: string;
let certPath: string;
let azurite: StartedAzurite;
let tokenEndpoint: TokenEndpoint;
let restoreEnvironment: () => void;
let adSettings: AzureBlobSettings;
const token = fakeStorageToken();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'oos-azure-ad-'));
  const tls = await selfSignedCertificate(dir);
  certPath = tls.certPath;
  azurite = await startAzurite({ tls, oauth: true });
  tokenEndpoint = await startTokenEndpoint(token);
  restoreEnvironment = useManagedIdentityEndpoint(tokenEndpoint);
  adSettings = azureSettings({
    accountUrl: azurite.blobEndpoint,
    containerName: 'ad-container',
    orthanc: { storageDirectory: 'OrthancStorage', syncStorageArea: true, httpsCaCertificates: certPath },
  });
});

afterAll(async () => {
  restoreEnvironment?.();
  await tokenEndpoint?.close();
  await azurite?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Status of Get Container Properties on `ad-container`, sent with the given Authorization header. */
async function containerStatus(authorization: string | undefined): Promise<number> {
  const headers: Record<string, string> = {
    'x-ms-version': '2021-12-02',
    'x-ms-date': new Date().toUTCString(),
  };
  if (authorization !== undefined) headers.authorization = authorization;
  return new Promise<number>((resolve, reject) => {
    request(
      `${azurite.blobEndpoint}/ad-container?restype=container`,
      { headers, ca: readFileSync(certPath) },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    )
      .on('error', reject)
      .end();
  });
}

describe('AccountUrl with Azure AD (managed identity) against Azurite over https', () => {
  it('authenticates with the token from the managed identity endpoint, not with a key', async () => {
    expect(azurite.blobEndpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/devstoreaccount1$/);
    const client = await openAzureBucketClient(adSettings, { log: quietLog });
    expect(client.auth).toBe('Azure AD (DefaultAzureCredential)');
    await client.put('ad/object.dcm', 5, Readable.from([Buffer.from('hello')]));
    const read = await client.get('ad/object.dcm');
    expect((await readAll(read.body)).toString()).toBe('hello');
    await client.delete('ad/object.dcm');

    // The identity chain asked our endpoint, with its secret header, for a storage token.
    expect(tokenEndpoint.requests.length).toBeGreaterThan(0);
    expect(tokenEndpoint.requests.every((request) => request.headerMatched)).toBe(true);
    expect(tokenEndpoint.requests[0]?.resource).toBe('https://storage.azure.com');
  });

  it('Azurite checks the bearer token: none or a wrong audience is refused, the issued one accepted', async () => {
    expect(await containerStatus(undefined)).toBeGreaterThanOrEqual(400);
    expect(await containerStatus(`Bearer ${fakeStorageToken({ audience: 'https://vault.azure.net' })}`)).toBe(
      403,
    );
    expect(await containerStatus(`Bearer ${token}`)).toBe(200);
  });

  it('without HttpsCACertificates, the self-signed endpoint is refused', async () => {
    const untrusted = azureSettings({ ...adSettings, containerName: 'ad-untrusted' });
    const failure = await openAzureBucketClient(
      { ...untrusted, orthanc: { ...untrusted.orthanc, httpsCaCertificates: undefined } },
      { log: quietLog },
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ObjectStorageError);
    expect((failure as Error).message).toMatch(
      /could not open container "ad-untrusted".*(certificate|self-signed)/i,
    );
  });

  it('refuses an unreadable HttpsCACertificates file by name', async () => {
    const missing = path.join(dir, 'no-such-ca.pem');
    const failure = openAzureBucketClient(
      { ...adSettings, orthanc: { ...adSettings.orthanc, httpsCaCertificates: missing } },
      { log: quietLog },
    );
    await expect(failure).rejects.toThrow(ConfigurationError);
    await expect(
      openAzureBucketClient(
        { ...adSettings, orthanc: { ...adSettings.orthanc, httpsCaCertificates: missing } },
        { log: quietLog },
      ),
    ).rejects.toThrow(`HttpsCACertificates: cannot read CA bundle "${missing}" (ENOENT)`);
  });
});
