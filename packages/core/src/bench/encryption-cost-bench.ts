/**
 * What encryption adds to the gateway's CPU per object (`pnpm bench` in packages/core): the same
 * objects written and read back through the storage stack plain, with C1 and with A1, rounds
 * alternating, CPU per object from process.cpuUsage, against AES-256-GCM's own one-shot cost for
 * the same bytes. Bodies arrive in pieces of up to 1 MiB, as the gateway's socket reader hands them
 * over, and leave as a bucket
 * client's do: written through forEachUploadPart into the pooled UploadBuffers (kept as a copy),
 * read back in 64 KiB pieces, as from an HTTP response. It runs under the glibc malloc settings the
 * shim gives the gateway (re-executing itself with them), since allocation costs depend on them.
 * In-process and in-memory, so the shared machine's noise stays low. Prints JSON and writes
 * bench-results/encryption-cost.json. Options: OOS_BENCH_OBJECT_BYTES (559 KB, the e2e corpus
 * average), OOS_BENCH_OBJECTS (200 per round), OOS_BENCH_RUNS (5).
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { ByteBudget } from '../crypto/byte-budget.js';
import { EncryptedStorage } from '../crypto/encrypted-storage.js';
import { Keyring } from '../crypto/keyring.js';
import { BucketStorage } from '../storage/bucket-storage.js';
import { ContentType, type ObjectReadStream, type ObjectStorage } from '../storage/contract.js';
import { MemoryBucketClient } from '../storage/memory-bucket.js';
import { forEachUploadPart, UploadBuffers } from '../storage/upload-buffers.js';

const OBJECT_BYTES = Number(process.env['OOS_BENCH_OBJECT_BYTES'] ?? 559_288);
const OBJECTS = Number(process.env['OOS_BENCH_OBJECTS'] ?? 200);
const RUNS = Number(process.env['OOS_BENCH_RUNS'] ?? 5);
/** Reads come back in 64 KiB pieces, as from an HTTP response. */
const PIECE = 64 * 1024;
/** Request bodies reach the storage in pieces of up to 1 MiB, as the gateway's socket reader hands them over. */
const BODY_PIECE = 1024 * 1024;
const RESULTS = resolve(dirname(fileURLToPath(import.meta.url)), '../../bench-results/encryption-cost.json');

type Variant = 'plain' | 'C1' | 'A1';
const VARIANTS: readonly Variant[] = ['plain', 'C1', 'A1'];

const round = (value: number, digits = 3): number => Math.round(value * 10 ** digits) / 10 ** digits;
const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
const cpuMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

function* pieces(data: Buffer, size = PIECE): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

const discard = (): Writable =>
  new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });

/** The gateway's malloc settings, as the shim sets them (native/gateway-process.c). */
const GATEWAY_MALLOC = { MALLOC_MMAP_THRESHOLD_: '1114112', MALLOC_ARENA_MAX: '2' };

/** An in-memory bucket whose bodies come and go as a real client's (see the header). */
class BenchBucket extends MemoryBucketClient {
  private readonly buffers = new UploadBuffers(8 << 20, new ByteBudget(64 << 20));

  override async put(name: string, size: number, body: Readable): Promise<void> {
    let stored = Buffer.alloc(0);
    await forEachUploadPart(body, size, this.buffers, name, async (part) => {
      stored = Buffer.from(part.data);
      part.release();
    });
    this.objects.set(name, stored);
  }

  override async get(name: string): Promise<ObjectReadStream> {
    const data = this.objects.get(name)!;
    return { size: data.length, body: Readable.from(pieces(data)) };
  }
}

function storageFor(variant: Variant, keyring: Keyring): ObjectStorage {
  const inner = new BucketStorage(new BenchBucket(), {
    rootPath: '',
    storageStructure: 'flat',
    encrypted: variant !== 'plain',
    enableLegacyUnknownFiles: false,
  });
  return variant === 'plain'
    ? inner
    : new EncryptedStorage(inner, keyring, new ByteBudget(256 << 20), variant);
}

/** CPU ms per object to write, then to read back, `OBJECTS` objects. */
async function measure(
  variant: Variant,
  keyring: Keyring,
  data: Buffer,
): Promise<{ write: number; read: number }> {
  const storage = storageFor(variant, keyring);
  const keys = Array.from({ length: OBJECTS }, () => ({ uuid: randomUUID(), type: ContentType.Dicom }));
  let started = cpuMs();
  for (const key of keys) await storage.create(key, data.length, Readable.from(pieces(data, BODY_PIECE)));
  const write = (cpuMs() - started) / OBJECTS;
  started = cpuMs();
  for (const key of keys) await pipeline((await storage.read(key)).body, discard());
  const read = (cpuMs() - started) / OBJECTS;
  return { write, read };
}

/** AES-256-GCM alone, one call each way on the whole object: the floor for what encryption costs. */
function aesGcmMs(data: Buffer): { encrypt: number; decrypt: number } {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  let sealed = Buffer.alloc(0);
  let tag = Buffer.alloc(16);
  let started = cpuMs();
  for (let i = 0; i < OBJECTS; i++) {
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    sealed = cipher.update(data);
    cipher.final();
    tag = cipher.getAuthTag();
  }
  const encrypt = (cpuMs() - started) / OBJECTS;
  started = cpuMs();
  for (let i = 0; i < OBJECTS; i++) {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAuthTag(tag);
    decipher.update(sealed);
    decipher.final();
  }
  return { encrypt, decrypt: (cpuMs() - started) / OBJECTS };
}

async function main(): Promise<void> {
  const keyring = new Keyring({ id: 1, key: randomBytes(32) });
  const data = randomBytes(OBJECT_BYTES);
  await measure('C1', keyring, data); // warm-up
  const rounds: Array<
    Record<Variant, { write: number; read: number }> & { aes: { encrypt: number; decrypt: number } }
  > = [];
  for (let run = 0; run < RUNS; run++) {
    const result: Partial<Record<Variant, { write: number; read: number }>> = {};
    for (let i = 0; i < VARIANTS.length; i++) {
      const variant = VARIANTS[(i + run) % VARIANTS.length]!;
      result[variant] = await measure(variant, keyring, data);
    }
    rounds.push({ ...(result as Record<Variant, { write: number; read: number }>), aes: aesGcmMs(data) });
  }
  const per = (pick: (r: (typeof rounds)[number]) => number) => round(median(rounds.map(pick)));
  const added = (format: 'C1' | 'A1') => ({
    writeMs: per((r) => r[format].write - r.plain.write),
    readMs: per((r) => r[format].read - r.plain.read),
    writeVsAesGcm: per((r) => (r[format].write - r.plain.write) / r.aes.encrypt),
    readVsAesGcm: per((r) => (r[format].read - r.plain.read) / r.aes.decrypt),
  });
  const report = {
    benchmark: 'encryption-cost',
    date: new Date().toISOString(),
    node: process.version,
    objectBytes: OBJECT_BYTES,
    objectsPerRound: OBJECTS,
    rounds: RUNS,
    note:
      'CPU ms per object through BucketStorage over an in-memory bucket that takes bodies as the S3 client does ' +
      '(forEachUploadPart into UploadBuffers) and serves them in 64 KiB pieces, bodies in pieces of up to 1 MiB, plain / C1 / A1 (EncryptedStorage), ' +
      'under the gateway\'s malloc settings; "added" is the encrypted minus the plain cost within each round, median over ' +
      'rounds; vsAesGcm divides it by AES-256-GCM one-shot on the same bytes (target: at most 1)',
    cpuMsPerObject: Object.fromEntries(
      VARIANTS.map((v) => [v, { write: per((r) => r[v].write), read: per((r) => r[v].read) }]),
    ),
    aesGcmOneShotMs: { encrypt: per((r) => r.aes.encrypt), decrypt: per((r) => r.aes.decrypt) },
    added: { C1: added('C1'), A1: added('A1') },
  };
  const json = JSON.stringify(report, null, 2);
  mkdirSync(dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, json + '\n');
  console.log(json);
}

if (Object.entries(GATEWAY_MALLOC).every(([name, value]) => process.env[name] === value)) {
  await main();
} else {
  const child = spawnSync(process.execPath, process.argv.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, ...GATEWAY_MALLOC },
  });
  process.exitCode = child.status ?? 1;
}
