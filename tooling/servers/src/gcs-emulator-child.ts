// Child process: firebase-tools' Cloud Storage emulator (in-process module, no Java, no rules)
// behind a front router that adds what @google-cloud/storage needs and the emulator lacks.
// Started by gcs-emulator.ts; prints one JSON line `{"port":N}` on stdout once listening.
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { GcsEmulatorInternals, StoredObjectMetadata } from './gcs-front-router.js';
import { createFrontRouter } from './gcs-front-router.js';

interface ChildOptions {
  readonly projectId: string;
  readonly buckets: readonly string[];
  readonly requiredBearerToken: string | undefined;
  readonly forbiddenBuckets: readonly string[];
}

const options = JSON.parse(process.argv[2] ?? '{}') as ChildOptions;
const require = createRequire(import.meta.url);
const firebaseRoot = path.dirname(require.resolve('firebase-tools/package.json'));
const load = (relative: string): Record<string, unknown> => require(path.join(firebaseRoot, 'lib', relative));

const { StorageEmulator } = load('emulator/storage/index.js') as {
  StorageEmulator: new (args: Record<string, unknown>) => GcsEmulatorInternals & {
    args: { port: number; host: string };
  };
};
const { createApp } = load('emulator/storage/server.js') as {
  createApp(projectId: string, emulator: unknown): Promise<http.RequestListener>;
};
const { CloudStorageObjectMetadata } = load('emulator/storage/metadata.js') as {
  CloudStorageObjectMetadata: new (metadata: StoredObjectMetadata) => unknown;
};
const { EmulatorRegistry } = load('emulator/registry.js') as {
  EmulatorRegistry: { INSTANCES: Map<string, unknown> };
};

async function main(): Promise<void> {
  // Rules stay off: `auto_download: false` and the rules runtime (Java) is never started;
  // the gcloud API uses the admin storage layer, which allows everything.
  const emulator = new StorageEmulator({
    projectId: options.projectId,
    host: '127.0.0.1',
    port: 0,
    auto_download: false,
    rules: { name: 'storage.rules', content: '' },
  });
  const app = await createApp(options.projectId, emulator);

  const front = createFrontRouter(emulator, {
    requiredBearerToken: options.requiredBearerToken,
    forbiddenBuckets: new Set(options.forbiddenBuckets),
    toObjectResource: (metadata) => new CloudStorageObjectMetadata(metadata),
  });
  const server = http.createServer((req, res) => {
    front(req, res, () => app(req, res)).catch((error: unknown) => {
      console.error('front router error', error);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error');
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    emulator.args.port = address.port;
    // Object metadata links are built from the registry entry: point it at this server.
    EmulatorRegistry.INSTANCES.set('storage', emulator);
    for (const bucket of options.buckets) emulator.adminStorageLayer.createBucket(bucket);
    process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
  });
  const shutdown = (): void => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
