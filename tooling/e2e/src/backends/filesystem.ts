import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { artifactDir } from '../harness/repo.js';
import type { BackendStore, E2EBackend, MasterKeyFile } from './backend.js';

/** Every file under `root`, as paths relative to it. */
async function walk(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
    .sort();
}

/**
 * A folder the plugin keeps objects in, in Orthanc's `<2>/<2>/<uuid>` layout.
 *
 * "Stopping" it: the folder is renamed away and a plain file takes its path, so every write,
 * read and mkdir under it fails (ENOTDIR), even for root, for whom permission bits would not
 * stop anything. Resuming renames the folder back with its objects.
 */
class FileSystemStore implements BackendStore {
  constructor(readonly location: string) {}

  section(encryption: MasterKeyFile | undefined): Record<string, unknown> {
    return {
      Directory: this.location,
      // Two worker threads whatever the machine (the default follows its CPUs): the suites prove
      // that calls, REST routes and jobs work spread over workers.
      GatewayWorkers: 2,
      ...(encryption && { StorageEncryption: { Enable: true, MasterKey: [encryption.id, encryption.path] } }),
    };
  }

  async listObjects(): Promise<string[]> {
    return walk(this.location);
  }

  async readObjectHead(name: string, bytes: number): Promise<Buffer> {
    const handle = await open(path.join(this.location, name), 'r');
    try {
      const buffer = Buffer.alloc(bytes);
      const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  async downloadObject(name: string, file: string): Promise<void> {
    await pipeline(createReadStream(path.join(this.location, name)), createWriteStream(file));
  }

  async writeObject(name: string, bytes: Buffer): Promise<void> {
    await writeFile(path.join(this.location, name), bytes);
  }

  private get awayPath(): string {
    return `${this.location}.interrupted`;
  }

  async interrupt(): Promise<void> {
    await rename(this.location, this.awayPath);
    await writeFile(this.location, 'the e2e suite interrupted this backend\n');
  }

  async resume(): Promise<void> {
    if (!existsSync(this.awayPath)) return;
    await rm(this.location, { force: true });
    await rename(this.awayPath, this.location);
  }
}

/** Core's file-system backend behind the bridge: nothing to start. */
export function fileSystemBackend(): E2EBackend {
  let root: string | undefined;
  let count = 0;
  return {
    name: 'filesystem',
    artifactPath: path.join(artifactDir('core'), 'libOrthancFileSystemObjectStorage.so'),
    sectionName: 'FileSystemObjectStorage',
    pluginId: 'File System Object Storage',
    async setUp(workDir: string) {
      root = path.join(workDir, 'filesystem-backend');
      await mkdir(root, { recursive: true });
    },
    async tearDown() {},
    async createStore(label: string) {
      if (root === undefined) throw new Error('fileSystemBackend: setUp() first');
      const location = path.join(root, `${String(++count).padStart(2, '0')}-${label}`);
      await mkdir(location, { recursive: true });
      return new FileSystemStore(location);
    },
  };
}
