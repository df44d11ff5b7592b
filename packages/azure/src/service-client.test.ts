import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigurationError } from '@orthanc-object-storage/core';
import { openServiceClient, redactUrl } from './service-client.js';
import { azureSettings } from './__tests__/fixtures.js';

// Building a client contacts nothing: these tests need no server.
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

describe('openServiceClient', () => {
  it('builds the endpoint from AccountName/AccountKey/EndpointSuffix', async () => {
    const opened = await openServiceClient(
      azureSettings({
        connectionString: `DefaultEndpointsProtocol=https;AccountName=orthancstore;AccountKey=${DEV_KEY};EndpointSuffix=core.windows.net`,
      }),
    );
    expect(opened.endpoint).toBe('https://orthancstore.blob.core.windows.net');
    expect(opened.accountName).toBe('orthancstore');
    expect(opened.auth).toBe('shared key');
  });

  it('uses BlobEndpoint when given, and trims spaces, CR and LF around the string', async () => {
    const opened = await openServiceClient(
      azureSettings({
        connectionString: ` \r\nDefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${DEV_KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;\r\n  `,
      }),
    );
    expect(opened.endpoint).toBe('http://127.0.0.1:10000/devstoreaccount1');
    expect(opened.accountName).toBe('devstoreaccount1');
  });

  it('accepts a SAS connection string and never shows the signature', async () => {
    const opened = await openServiceClient(
      azureSettings({
        connectionString:
          'BlobEndpoint=https://orthancstore.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&srt=co&sp=rwdlac&se=2099-01-01T00:00:00Z&sig=c2VjcmV0',
      }),
    );
    expect(opened.auth).toBe('SAS or anonymous');
    expect(opened.endpoint).toBe('https://orthancstore.blob.core.windows.net');
    expect(opened.endpoint).not.toContain('sig=');
  });

  it('refuses an unusable connection string without quoting it', async () => {
    const connectionString = `AccountKey=${DEV_KEY};Nonsense=1`;
    const failure = await openServiceClient(azureSettings({ connectionString })).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ConfigurationError);
    expect((failure as Error).message).toMatch(
      /^AzureBlobStorage\.ConnectionString: unusable connection string/,
    );
    expect((failure as Error).message).not.toContain(DEV_KEY);
  });

  it('uses AccountUrl with a token credential', async () => {
    const opened = await openServiceClient(
      azureSettings({ accountUrl: 'https://orthancstore.blob.core.windows.net/' }),
    );
    expect(opened.auth).toBe('Azure AD (DefaultAzureCredential)');
    expect(opened.accountName).toBe('orthancstore');
    expect(opened.endpoint).toBe('https://orthancstore.blob.core.windows.net');
  });

  it.each([
    ['http://orthancstore.blob.core.windows.net', /must use https/],
    ['https://orthancstore.blob.core.windows.net?sv=1&sig=abc', /must not carry a query/],
    ['not a url', /is not a URL/],
  ])('refuses AccountUrl %s', async (accountUrl, reason) => {
    await expect(openServiceClient(azureSettings({ accountUrl }))).rejects.toThrow(reason);
  });

  it('needs ConnectionString or AccountUrl', async () => {
    await expect(openServiceClient(azureSettings({}))).rejects.toThrow(
      /neither ConnectionString nor AccountUrl is set/,
    );
  });

  it('refuses an HttpsCACertificates file that holds no PEM certificate', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'oos-azure-ca-'));
    try {
      const file = path.join(dir, 'ca.pem');
      await writeFile(file, 'not a certificate\n');
      const settings = azureSettings({ accountUrl: 'https://orthancstore.blob.core.windows.net' });
      await expect(
        openServiceClient({ ...settings, orthanc: { ...settings.orthanc, httpsCaCertificates: file } }),
      ).rejects.toThrow(`HttpsCACertificates: "${file}" holds no PEM certificate`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('redactUrl', () => {
  it('drops query and user info', () => {
    expect(redactUrl('https://user:pw@host.example/path/?sig=secret')).toBe('https://host.example/path');
  });
});
