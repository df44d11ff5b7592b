// Child process of expectBoundedMemoryRoundTrip: one large create + read + remove, then its peak RSS.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ContentType, type ObjectStorage } from '@orthanc-object-storage/core';
import { digestOfStream, patternStream, sha256OfStream } from './pattern.js';

export interface MemoryChildRequest {
  readonly factoryModule: string;
  readonly factoryOptions: unknown;
  readonly sizeBytes: number;
  readonly seed: number;
}

export interface MemoryChildReport {
  readonly ok: boolean;
  readonly error?: string;
  readonly peakRssBytes?: number;
  readonly createSeconds?: number;
  readonly readSeconds?: number;
}

type Factory = (options: unknown) => Promise<ObjectStorage>;

function peakRssBytes(): number {
  const match = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
}

async function run(request: MemoryChildRequest): Promise<MemoryChildReport> {
  const module = (await import(pathToFileURL(request.factoryModule).href)) as {
    createStorage?: Factory;
    default?: Factory;
  };
  const createStorage = module.createStorage ?? module.default;
  if (typeof createStorage !== 'function') {
    throw new Error(`${request.factoryModule} exports neither createStorage nor a default storage factory`);
  }
  const storage = await createStorage(request.factoryOptions);
  const key = { uuid: randomUUID(), type: ContentType.Dicom };
  try {
    let started = performance.now();
    await storage.create(key, request.sizeBytes, patternStream(request.sizeBytes, request.seed));
    const createSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    const { size, body } = await storage.read(key);
    const got = await digestOfStream(body);
    const readSeconds = (performance.now() - started) / 1000;
    const expected = await sha256OfStream(patternStream(request.sizeBytes, request.seed));
    if (size !== request.sizeBytes || got.size !== request.sizeBytes || got.sha256 !== expected) {
      throw new Error(
        `round trip mismatch: announced ${size}, read ${got.size} bytes, sha256 ${got.sha256} vs ${expected}`,
      );
    }
    return { ok: true, peakRssBytes: peakRssBytes(), createSeconds, readSeconds };
  } finally {
    await storage.remove(key).catch(() => {});
    await storage.close();
  }
}

process.once('message', (request: MemoryChildRequest) => {
  run(request)
    .catch((error: unknown): MemoryChildReport => ({
      ok: false,
      error: (error as Error).stack ?? String(error),
    }))
    .then((report) => process.send?.(report, () => process.exit(report.ok ? 0 : 1)));
});
