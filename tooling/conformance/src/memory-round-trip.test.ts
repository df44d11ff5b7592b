import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expectBoundedMemoryRoundTrip } from './memory-round-trip.js';

const coreUrl = pathToFileURL(join(import.meta.dirname, '../../../packages/core/dist/index.js')).href;
const MiB = 1024 * 1024;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oos-memory-'));
  await writeFile(
    join(dir, 'factory.mjs'),
    `import { FileSystemStorage } from ${JSON.stringify(coreUrl)};
export async function createStorage(options) { return new FileSystemStorage({ root: options.root, sync: false }); }
`,
  );
  await writeFile(join(dir, 'broken.mjs'), 'export const nothing = 1;\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('expectBoundedMemoryRoundTrip', () => {
  // Larger than the bound: the object cannot have been held whole.
  it('round-trips 384 MiB through FileSystemStorage in a child process under 256 MiB peak RSS', async () => {
    const root = join(dir, 'objects');
    const result = await expectBoundedMemoryRoundTrip({
      factoryModule: join(dir, 'factory.mjs'),
      factoryOptions: { root },
      sizeBytes: 384 * MiB,
      maxRssBytes: 256 * MiB,
    });
    console.log(
      `384 MiB FileSystemStorage round trip: peak RSS ${(result.peakRssBytes / MiB).toFixed(1)} MiB`,
    );
    expect(result.createSeconds).toBeGreaterThan(0);
    expect((await readdir(root)).length).toBe(0);
  });

  it('fails when the peak RSS is above the bound', async () => {
    await expect(
      expectBoundedMemoryRoundTrip({
        factoryModule: join(dir, 'factory.mjs'),
        factoryOptions: { root: join(dir, 'objects2') },
        sizeBytes: 1 * MiB,
        maxRssBytes: 1 * MiB,
      }),
    ).rejects.toThrow();
  });

  it('reports a module without a factory', async () => {
    await expect(
      expectBoundedMemoryRoundTrip({ factoryModule: join(dir, 'broken.mjs'), sizeBytes: 1 }),
    ).rejects.toThrow(/exports neither createStorage nor a default storage factory/);
  });
});
