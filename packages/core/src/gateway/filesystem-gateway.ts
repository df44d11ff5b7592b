// Gateway entry of libOrthancFileSystemObjectStorage.so (section FileSystemObjectStorage):
// core's file-system backend behind the bridge, for tests and demos.
import { createStorageStack } from '../storage/compose.js';
import { serveGateway } from './run-gateway.js';

await serveGateway('filesystem', (settings, log) => createStorageStack(settings, undefined, log));
