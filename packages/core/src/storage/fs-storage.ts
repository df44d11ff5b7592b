// STUB (owner: config helper).
import type { Readable } from 'node:stream';
import type { ObjectKey, ObjectReadStream, ObjectStorage } from './contract.js';

export interface FileSystemStorageOptions {
  /** Root directory; objects go to `<root>/<2 chars>/<2 chars>/<uuid>` as Orthanc lays them out. */
  readonly root: string;
  /** fsync before rename (Orthanc's `SyncStorageArea`). */
  readonly sync: boolean;
}

export class FileSystemStorage implements ObjectStorage {
  readonly supportsVerifiedRangeReads = true;
  constructor(readonly options: FileSystemStorageOptions) {}
  create(_key: ObjectKey, _size: number, _body: Readable): Promise<void> {
    throw new Error('not implemented');
  }
  read(_key: ObjectKey): Promise<ObjectReadStream> {
    throw new Error('not implemented');
  }
  readRange(_key: ObjectKey, _offset: number, _length: number): Promise<Readable> {
    throw new Error('not implemented');
  }
  remove(_key: ObjectKey): Promise<void> {
    throw new Error('not implemented');
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
