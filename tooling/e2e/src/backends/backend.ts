import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
/** An A1 master key file the suite generated: `StorageEncryption.MasterKey = [id, path]`. */
export interface MasterKeyFile {
  readonly id: number;
  readonly path: string;
}

/** A fresh random master key in `<dir>/master-key-<id>.b64` (mode 0600, as operators keep them). */
export function writeMasterKey(dir: string, id: number): MasterKeyFile {
  const file = path.join(dir, `master-key-${id}.b64`);
  writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  return { id, path: file };
}

/**
 * One isolated place to keep objects in (a folder, a bucket, a container), with the plugin
 * section that points Orthanc at it and raw access for the checks.
 */
export interface BackendStore {
  /** Where the objects are, for messages and the demo. */
  readonly location: string;
  /** The plugin section's value (without NodeExecutable, which the suite adds). */
  section(encryption: MasterKeyFile | undefined): Record<string, unknown>;
  /** Names of every object in the store. */
  listObjects(): Promise<string[]>;
  /** The first `bytes` bytes of an object. */
  readObjectHead(name: string, bytes: number): Promise<Buffer>;
  /** Copy a raw object to a local file, streamed. */
  downloadObject(name: string, file: string): Promise<void>;
  /** Write raw bytes under an object name, bypassing the plugin (to tamper with objects). */
  writeObject(name: string, bytes: Buffer): Promise<void>;
  /**
   * Make the store unreachable, as a stopped server would be (may affect every store of the
   * backend), then bring it back with the same objects.
   */
  interrupt(): Promise<void>;
  resume(): Promise<void>;
}

/** Everything the end-to-end suite needs to know about one provider. */
export interface E2EBackend {
  /** Short name for test titles: filesystem, aws, azure, google. */
  readonly name: string;
  /** The plugin library Orthanc loads (the build's dist/plugin, run with NodeExecutable). */
  readonly artifactPath: string;
  /**
   * The provider's release tarball. When set, the suite unpacks it and Orthanc loads the plugin
   * from there, on the runtime beside it, with no Node.js on its PATH and no NodeExecutable.
   */
  readonly releaseTarball?: string;
  /** The configuration section the plugin reads, e.g. AwsS3Storage. */
  readonly sectionName: string;
  /** The plugin's ID in Orthanc's /plugins, when known; otherwise any loaded plugin counts. */
  readonly pluginId?: string;
  /** Start the backend's server(s), once per suite. */
  setUp(workDir: string): Promise<void>;
  /** Stop them, by PID. */
  tearDown(): Promise<void>;
  /** A fresh, empty store. */
  createStore(label: string): Promise<BackendStore>;
}
