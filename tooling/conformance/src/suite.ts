import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  ContentType,
  type EncryptionSettings,
  type ObjectKey,
  type ObjectStorage,
} from '@orthanc-object-storage/core';
import { testEncryptionSettings } from './master-key.js';
import { bufferOfStream, digestOfStream, patternBytes, patternStream, sha256OfStream } from './pattern.js';

export interface ConformanceFactoryOptions {
  /** Undefined: encryption off. Otherwise a fresh master key, made by the suite. */
  readonly encryption: EncryptionSettings | undefined;
}

export type ConformanceStorageFactory = (options: ConformanceFactoryOptions) => Promise<ObjectStorage>;

export interface ConformanceOptions {
  /** Size of the large object (default 64 MiB, the minimum the contract asks for). */
  readonly largeSizeBytes?: number;
  /** Jest timeout of the slow tests, in ms (default 300 s). */
  readonly slowTimeoutMs?: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** Error class check by name: the suite and the storage may load different copies of core. */
async function expectRejectsWith(promise: Promise<unknown>, errorName: string): Promise<Error> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(Error);
  expect((caught as Error).name).toBe(errorName);
  return caught as Error;
}

async function expectFailsSomewhere(run: () => Promise<unknown>): Promise<Error> {
  let caught: unknown;
  try {
    await run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(Error);
  return caught as Error;
}

function newKey(type: ContentType = ContentType.Dicom): ObjectKey {
  return { uuid: randomUUID(), type };
}

/**
 * Declare the storage contract's conformance tests for a backend, with encryption off and on.
 * Call it at the top level of a jest test file; `factory` builds a fresh storage for each mode.
 */
export function describeStorageConformance(
  name: string,
  factory: ConformanceStorageFactory,
  options: ConformanceOptions = {},
): void {
  const largeSize = options.largeSizeBytes ?? 64 * MiB;
  const slow = options.slowTimeoutMs ?? 300_000;

  for (const mode of ['off', 'on'] as const) {
    describe(`${name}: storage conformance, encryption ${mode}`, () => {
      let storage: ObjectStorage;
      let keyDir: string | undefined;
      let seed = mode === 'off' ? 1000 : 2000;
      const nextSeed = (): number => ++seed;

      beforeAll(async () => {
        let encryption: EncryptionSettings | undefined;
        if (mode === 'on') {
          keyDir = await mkdtemp(join(tmpdir(), 'oos-conformance-key-'));
          encryption = await testEncryptionSettings(keyDir);
        }
        storage = await factory({ encryption });
      }, slow);

      afterAll(async () => {
        await storage?.close();
        if (keyDir) await rm(keyDir, { recursive: true, force: true });
      });

      async function roundTrip(size: number, type = ContentType.Dicom): Promise<void> {
        const key = newKey(type);
        const objectSeed = nextSeed();
        await storage.create(key, size, patternStream(size, objectSeed));
        try {
          const { size: readSize, body } = await storage.read(key);
          expect(readSize).toBe(size);
          const got = await digestOfStream(body);
          expect(got.size).toBe(size);
          expect(got.sha256).toBe(await sha256OfStream(patternStream(size, objectSeed)));
        } finally {
          await storage.remove(key);
        }
      }

      it('round-trips an empty object (0 B)', () => roundTrip(0));
      it('round-trips 1 B', () => roundTrip(1));
      it('round-trips 1 MiB', () => roundTrip(MiB));
      it('round-trips every content type', async () => {
        for (const type of [
          ContentType.Unknown,
          ContentType.Dicom,
          ContentType.DicomAsJson,
          ContentType.DicomUntilPixelData,
        ]) {
          await roundTrip(1000 + type, type);
        }
      });
      it(`round-trips ${largeSize} B, streamed and verified by sha256`, () => roundTrip(largeSize), slow);

      describe('range reads', () => {
        const size = 2 * MiB + 12_345;
        const key = newKey();
        let objectSeed = 0;

        beforeAll(async () => {
          objectSeed = nextSeed();
          await storage.create(key, size, patternStream(size, objectSeed));
        }, slow);
        afterAll(async () => {
          await storage?.remove(key);
        });

        const ranges: Array<[string, number, number]> = [
          ['first byte', 0, 1],
          ['start', 0, 4096],
          ['middle', Math.floor(size / 2) - 50, 100],
          ['last byte', size - 1, 1],
          ['end', size - 5000, 5000],
          ['across the 64 KiB boundary', 64 * KiB - 10, 20],
          ['across the 1 MiB boundary', MiB - 7, 14],
          ['across several 64 KiB blocks and 1 MiB', 64 * KiB - 3, MiB + 100],
          ['the whole object', 0, size],
        ];
        for (const [label, offset, length] of ranges) {
          it(`reads ${label} (offset ${offset}, length ${length})`, async () => {
            const got = await bufferOfStream(await storage.readRange(key, offset, length));
            expect(got.length).toBe(length);
            expect(got.equals(patternBytes(objectSeed, offset, length))).toBe(true);
          });
        }

        it('refuses a range that ends past the end', async () => {
          await expectRejectsWith(
            (async () => bufferOfStream(await storage.readRange(key, size - 10, 11)))(),
            'RangeNotSatisfiableError',
          );
        });
        it('refuses a range that starts at or past the end', async () => {
          await expectRejectsWith(
            (async () => bufferOfStream(await storage.readRange(key, size, 1)))(),
            'RangeNotSatisfiableError',
          );
          await expectRejectsWith(
            (async () => bufferOfStream(await storage.readRange(key, size + MiB, 10)))(),
            'RangeNotSatisfiableError',
          );
        });
      });

      it('reports a missing object as ObjectNotFoundError (read and range read)', async () => {
        const key = newKey();
        const error = await expectRejectsWith(storage.read(key), 'ObjectNotFoundError');
        expect(error.message).toContain(key.uuid);
        await expectRejectsWith(storage.readRange(key, 0, 1), 'ObjectNotFoundError');
      });

      it('removes idempotently: double remove, and remove of a never-created object', async () => {
        const key = newKey();
        await storage.create(key, 100, patternStream(100, nextSeed()));
        await storage.remove(key);
        await storage.remove(key);
        await expectRejectsWith(storage.read(key), 'ObjectNotFoundError');
        await storage.remove(newKey());
      });

      it(
        'serves 32 concurrent creates, reads, range reads and removes',
        async () => {
          await Promise.all(
            Array.from({ length: 32 }, async (_, index) => {
              const key = newKey();
              const objectSeed = nextSeed();
              const size = 64 * KiB + index * 1000;
              await storage.create(key, size, patternStream(size, objectSeed));
              const { size: readSize, body } = await storage.read(key);
              expect(readSize).toBe(size);
              expect(await sha256OfStream(body)).toBe(await sha256OfStream(patternStream(size, objectSeed)));
              const slice = await bufferOfStream(await storage.readRange(key, 1000, 5000));
              expect(slice.equals(patternBytes(objectSeed, 1000, 5000))).toBe(true);
              await storage.remove(key);
              await expectRejectsWith(storage.read(key), 'ObjectNotFoundError');
            }),
          );
        },
        slow,
      );

      it('rejects a body shorter or longer than the announced size, leaving nothing behind', async () => {
        const short = newKey();
        await expectFailsSomewhere(() => storage.create(short, 1000, patternStream(999, nextSeed())));
        await expectRejectsWith(storage.read(short), 'ObjectNotFoundError');

        const long = newKey();
        await expectFailsSomewhere(() => storage.create(long, 1000, patternStream(1001, nextSeed())));
        await expectRejectsWith(storage.read(long), 'ObjectNotFoundError');
      });

      it('rejects a body that fails mid-stream, leaving nothing behind', async () => {
        const key = newKey();
        const failing = new Readable({
          read() {
            this.push(Buffer.alloc(1000));
            this.destroy(new Error('client went away'));
          },
        });
        await expectFailsSomewhere(() => storage.create(key, 10_000, failing));
        await expectRejectsWith(storage.read(key), 'ObjectNotFoundError');
      });
    });
  }
}
