// A large C1 object through the real shim and gateway (the fake Orthanc host loads the built
// file-system plugin): bytes come back exact, the gateway's memory stays bounded, and a 4 KiB
// range reads only the header and the chunk that covers it.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileBridgeHost, FILESYSTEM_PLUGIN, runLargeObject } from '../bench/bridge-host.js';

const MiB = 1024 * 1024;
const BYTES = 256 * MiB;
const RSS_LIMIT_KIB = 256 * 1024;

describe('a 256 MiB C1 object through the shim', () => {
  let dir: string;
  beforeAll(async () => {
    if (!existsSync(FILESYSTEM_PLUGIN))
      throw new Error(`${FILESYSTEM_PLUGIN} is missing: run pnpm build first`);
    dir = await mkdtemp(join(tmpdir(), 'oos-large-c1-'));
  });
  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('round-trips, with gateway RSS under 256 MiB and ranges fetching one chunk', async () => {
    const keyPath = join(dir, 'k.b64');
    await writeFile(keyPath, `${randomBytes(32).toString('base64')}\n`);
    const report = await runLargeObject({
      host: compileBridgeHost(dir),
      workDir: dir,
      bytes: BYTES,
      ranges: 20,
      encryption: { keyPath, writeFormat: 'C1' },
    });
    expect(report.failures).toBe(0);
    const { create, readWhole, readRange4KiB } = report.phases;
    // Holding the object would put the gateway far above the limit (256 MiB plus Node itself).
    expect(create.gatewayPeakRssKiB).toBeGreaterThan(0);
    for (const phase of [create, readWhole, readRange4KiB]) {
      expect(phase.gatewayPeakRssKiB).toBeLessThan(RSS_LIMIT_KIB);
    }
    // Each range: one 65,552-byte chunk (the 105-byte header once, then from the cache), plus the
    // shim's request; never the rest of the 256 MiB.
    const perRange = readRange4KiB.gatewayReadBytes / readRange4KiB.calls;
    expect(perRange).toBeGreaterThan(65_552);
    expect(perRange).toBeLessThan(65_552 + 4096);
    expect(readWhole.gatewayReadBytes).toBeGreaterThan(BYTES);
  }, 180_000);
});
