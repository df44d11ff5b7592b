import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { Readable } from 'node:stream';
import type { GoogleCloudSettings } from '@orthanc-object-storage/core';

/** Settings as the config parser gives them for a `GoogleCloudStorage` section. */
export function googleSettings(overrides: Partial<GoogleCloudSettings> = {}): GoogleCloudSettings {
  return {
    provider: 'google',
    section: 'GoogleCloudStorage',
    rootPath: '',
    storageStructure: 'flat',
    enableLegacyUnknownFiles: false,
    hybridMode: 'Disabled',
    encryption: undefined,
    nodeExecutable: undefined,
    gatewayCallTimeoutSeconds: 60,
    gatewayWorkers: 1,
    orthanc: { storageDirectory: 'OrthancStorage', syncStorageArea: true, httpsCaCertificates: undefined },
    serviceAccountFile: undefined,
    bucketName: 'orthanc-test',
    ...overrides,
  };
}

/** A stream of `data` in small pieces, as a network body arrives. */
export function bodyOf(data: Buffer, piece = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < data.length; at += piece) yield data.subarray(at, at + piece);
    })(),
  );
}

/** A throwaway service-account key (fresh RSA key, fake account): the shape Google issues. */
export function fakeServiceAccountKey(
  email = 'orthanc@demo-orthanc.iam.gserviceaccount.com',
): Record<string, string> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    type: 'service_account',
    project_id: 'demo-orthanc',
    private_key_id: 'fake',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: email,
    client_id: '1',
    token_uri: 'http://127.0.0.1:9/token',
  };
}

/**
 * A GCE/GKE metadata server on 127.0.0.1 (what workload identity serves): hands out `token`.
 * Records the paths asked, so a test can see the token came from here.
 */
export async function startFakeMetadataServer(
  token: string,
): Promise<{ host: string; paths: string[]; server: Server }> {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    const path = (req.url ?? '').split('?')[0];
    const headers = { 'Metadata-Flavor': 'Google' };
    if (req.headers['metadata-flavor'] !== 'Google') {
      res.writeHead(403, headers).end();
    } else if (path === '/computeMetadata/v1/instance/service-accounts/default/token') {
      res.writeHead(200, { ...headers, 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: token, expires_in: 3600, token_type: 'Bearer' }));
    } else if (path === '/computeMetadata/v1/project/project-id') {
      res.writeHead(200, { ...headers, 'content-type': 'text/plain' }).end('demo-orthanc');
    } else if (path === '/computeMetadata/v1/universe/universe-domain') {
      res.writeHead(200, { ...headers, 'content-type': 'text/plain' }).end('googleapis.com');
    } else if (path === '/computeMetadata/v1/instance' || path === '/computeMetadata/v1/instance/') {
      res.writeHead(200, { ...headers, 'content-type': 'text/plain' }).end('');
    } else {
      res.writeHead(404, headers).end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return { host: `127.0.0.1:${address.port}`, paths, server };
}

// Test data helpers shared by every provider's tests.
export { patternBuffer as patterned, readAll } from '@orthanc-object-storage/conformance';
