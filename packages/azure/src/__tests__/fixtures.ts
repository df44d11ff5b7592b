import { createServer, type IncomingMessage, type Server } from 'node:http';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { AzureBlobSettings } from '@orthanc-object-storage/core';
import { silentLogger } from '@orthanc-object-storage/core';

/** Settings as the config parser would give them for an `AzureBlobStorage` section. */
export function azureSettings(overrides: Partial<AzureBlobSettings>): AzureBlobSettings {
  return {
    provider: 'azure',
    section: 'AzureBlobStorage',
    rootPath: '',
    storageStructure: 'flat',
    enableLegacyUnknownFiles: false,
    hybridMode: 'Disabled',
    encryption: undefined,
    nodeExecutable: undefined,
    gatewayCallTimeoutSeconds: 60,
    gatewayWorkers: 1,
    orthanc: { storageDirectory: 'OrthancStorage', syncStorageArea: true, httpsCaCertificates: undefined },
    connectionString: undefined,
    accountUrl: undefined,
    containerName: 'orthanc',
    createContainerIfNotExists: true,
    accessTier: undefined,
    ...overrides,
  };
}

export const quietLog = silentLogger;

/** A stream yielding `data` in chunks of `chunkBytes` (not aligned with blocks). */
export function chunked(data: Buffer, chunkBytes = 100_003): Readable {
  function* pieces() {
    for (let offset = 0; offset < data.length; offset += chunkBytes)
      yield data.subarray(offset, offset + chunkBytes);
  }
  return Readable.from(pieces());
}

/** An unsigned JWT as Azure AD would issue for storage; Azurite's "basic" OAuth checks these claims. */
export function fakeStorageToken(claims: { audience?: string; lifetimeSeconds?: number } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const payload = {
    aud: claims.audience ?? 'https://storage.azure.com',
    iss: 'https://sts.windows.net/00000000-0000-0000-0000-000000000001/',
    iat: now - 60,
    nbf: now - 60,
    exp: now + (claims.lifetimeSeconds ?? 3600),
    oid: '00000000-0000-0000-0000-000000000002',
  };
  return `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode(payload)}.${Buffer.from('unsigned').toString('base64url')}`;
}

export interface TokenEndpoint {
  /** What to put in IDENTITY_ENDPOINT. */
  readonly url: string;
  /** What to put in IDENTITY_HEADER. */
  readonly secret: string;
  readonly requests: { resource: string | null; headerMatched: boolean }[];
  /** The token handed out; `undefined` makes the endpoint answer 400 as for an identity not assigned. */
  token: string | undefined;
  close(): Promise<void>;
}

/**
 * A stand-in for App Service's managed identity endpoint (IDENTITY_ENDPOINT + IDENTITY_HEADER),
 * on 127.0.0.1: answers every well-formed request with `token`.
 */
export async function startTokenEndpoint(initialToken: string | undefined): Promise<TokenEndpoint> {
  const secret = 'identity-header-for-tests';
  const requests: TokenEndpoint['requests'] = [];
  const server: Server = createServer((request: IncomingMessage, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const headerMatched = request.headers['x-identity-header'] === secret;
    requests.push({ resource: url.searchParams.get('resource'), headerMatched });
    const token = endpoint.token;
    if (!headerMatched || token === undefined) {
      response.writeHead(400, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: 'invalid_request', error_description: 'Identity not found' }));
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({
        access_token: token,
        expires_on: String(Math.floor(Date.now() / 1000) + 3600),
        resource: url.searchParams.get('resource'),
        token_type: 'Bearer',
      }),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('token endpoint did not bind');
  const endpoint: TokenEndpoint = {
    url: `http://127.0.0.1:${address.port}/msi/token`,
    secret,
    requests,
    token: initialToken,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return endpoint;
}

/** Environment variables that would steer DefaultAzureCredential elsewhere than our endpoint. */
const IDENTITY_VARIABLES = [
  'AZURE_CLIENT_ID',
  'AZURE_TENANT_ID',
  'AZURE_CLIENT_SECRET',
  'AZURE_CLIENT_CERTIFICATE_PATH',
  'AZURE_USERNAME',
  'AZURE_PASSWORD',
  'AZURE_FEDERATED_TOKEN_FILE',
  'AZURE_AUTHORITY_HOST',
  'AZURE_TOKEN_CREDENTIALS',
  'IDENTITY_ENDPOINT',
  'IDENTITY_HEADER',
  'IDENTITY_SERVER_THUMBPRINT',
  'IMDS_ENDPOINT',
  'MSI_ENDPOINT',
  'MSI_SECRET',
];

/** Point the managed-identity lookup at `endpoint`; returns a function restoring the environment. */
export function useManagedIdentityEndpoint(endpoint: TokenEndpoint): () => void {
  const saved = new Map(IDENTITY_VARIABLES.map((name) => [name, process.env[name]]));
  for (const name of IDENTITY_VARIABLES) delete process.env[name];
  process.env.IDENTITY_ENDPOINT = endpoint.url;
  process.env.IDENTITY_HEADER = endpoint.secret;
  return () => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

// Test data helpers shared by every provider's tests.
export { patternBuffer as patterned, readAll } from '@orthanc-object-storage/conformance';
export { selfSignedCertificate } from '@orthanc-object-storage/servers';
