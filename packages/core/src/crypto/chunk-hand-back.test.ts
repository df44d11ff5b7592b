import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { ContentType, type ObjectKey, type ObjectReadStream } from '../storage/contract.js';
import type { ChunkReleasing } from '../storage/reusable-buffers.js';
import { ByteBudget } from './byte-budget.js';
import { EncryptedStorage } from './encrypted-storage.js';
import { Keyring } from './keyring.js';
import { MemoryStorage } from './__tests__/memory-storage.js';

/**
 * A body like the gateway's request bodies and file reads: each chunk lives in memory the body
 * lends out and reuses once it is handed back (`releaseChunk`). Here a chunk handed back is
 * overwritten at once, as the next request would, so a consumer that hands back too early
 * corrupts what it stores or returns.
 */
class LendingBody extends Readable implements ChunkReleasing {
  private readonly lent = new WeakSet<ArrayBufferLike>();
  /** Chunks lent and not yet handed back. */
  outstanding = 0;
  chunksLent = 0;
  private offset = 0;

  constructor(
    private readonly data: Buffer,
    private readonly piece: number,
  ) {
    super();
  }

  override _read(): void {
    if (this.offset === this.data.length) {
      this.push(null);
      return;
    }
    const end = Math.min(this.data.length, this.offset + this.piece);
    const chunk = Buffer.allocUnsafeSlow(end - this.offset);
    this.data.copy(chunk, 0, this.offset, end);
    this.offset = end;
    this.lent.add(chunk.buffer);
    this.outstanding += 1;
    this.chunksLent += 1;
    this.push(chunk);
  }

  releaseChunk(chunk: Buffer): void {
    if (!this.lent.delete(chunk.buffer)) return;
    this.outstanding -= 1;
    chunk.fill(0xa5); // reused for the next request
  }
}

/** Reads come as lending bodies too (file reads in the gateway's file-system backend). */
class LendingStorage extends MemoryStorage {
  readonly bodies: LendingBody[] = [];

  constructor(private readonly piece: number) {
    super();
  }

  override async read(key: ObjectKey): Promise<ObjectReadStream> {
    const stored = await super.read(key);
    const body = new LendingBody(await buffer(stored.body), this.piece);
    this.bodies.push(body);
    return { size: stored.size, body };
  }
}

/** Attachment uuids as Orthanc gives them (C1 binds objects to them). */
const key = (n: number): ObjectKey => ({
  uuid: `0a1b2c3d-0000-4000-8000-${String(n).padStart(12, '0')}`,
  type: ContentType.Dicom,
});

describe.each(['C1', 'A1'] as const)('%s storage and the chunks a body lends', (format) => {
  const keyring = new Keyring({ id: 1, key: randomBytes(32) });
  const data = randomBytes(300_001);

  it.each([1024 * 1024, 65_536, 70_001, 1000])(
    'hands back every chunk of a request body once encrypted, never before (pieces of %i bytes)',
    async (piece) => {
      const inner = new LendingStorage(piece);
      const storage = new EncryptedStorage(inner, keyring, new ByteBudget(1 << 30), format);
      const bodies = [0, 1, 2].map(() => new LendingBody(data, piece));
      for (const [i, body] of bodies.entries()) await storage.create(key(i), data.length, body);
      for (const body of bodies) {
        expect(body.chunksLent).toBe(Math.ceil(data.length / piece));
        expect(body.outstanding).toBe(0);
      }
      for (const i of [0, 1, 2]) {
        const { body } = await storage.read(key(i));
        expect((await buffer(body)).equals(data)).toBe(true);
      }
    },
  );

  it.each([1024 * 1024, 65_536, 4096])(
    'hands back every chunk of a stored body once decrypted, never before (pieces of %i bytes)',
    async (piece) => {
      const inner = new LendingStorage(piece);
      const storage = new EncryptedStorage(inner, keyring, new ByteBudget(1 << 30), format);
      await storage.create(key(7), data.length, Readable.from([data]));
      const { body } = await storage.read(key(7));
      expect((await buffer(body)).equals(data)).toBe(true);
      const [stored] = inner.bodies;
      expect(stored!.chunksLent).toBeGreaterThan(0);
      expect(stored!.outstanding).toBe(0);
    },
  );
});
