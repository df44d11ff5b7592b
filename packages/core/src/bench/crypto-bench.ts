/**
 * Crypto benchmark (`pnpm bench` in packages/core): C1 and A1 encrypt/decrypt throughput at 1 MiB
 * and 256 MiB in the same run (alternating, 2 rounds), and the peak RSS of streamed 1 GiB round
 * trips (in-process streams, and the CLI on files), each measured in a child process. Prints JSON
 * and writes bench-results/crypto.json.
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createA1DecryptStream } from '../crypto/a1-decrypt-stream.js';
import { createA1EncryptStream } from '../crypto/a1-encrypt-stream.js';
import { ByteBudget } from '../crypto/byte-budget.js';
import { createC1DecryptStream } from '../crypto/c1-decrypt-stream.js';
import { createC1EncryptStream } from '../crypto/c1-encrypt-stream.js';
import { Keyring } from '../crypto/keyring.js';
import { ContentType } from '../storage/contract.js';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const RSS_TARGET_MIB = 256;
const DEFAULT_BUDGET = 1024 * MiB;
const SELF = fileURLToPath(import.meta.url);
const RESULTS = resolve(dirname(SELF), '../../bench-results/crypto.json');
const CLI = resolve(dirname(SELF), '../cli/main.js');

const master = { id: 1, key: randomBytes(32) };
const keyring = new Keyring(master);
const ATTACHMENT = { uuid: '0a1b2c3d-0000-4000-8000-00000000bec1', type: ContentType.Dicom };

type Format = 'A1' | 'C1';
const FORMATS: readonly Format[] = ['A1', 'C1'];

/** The encrypt and decrypt streams of a format, for a plaintext of `size` bytes. */
function encryptStream(format: Format, size: number, budget: ByteBudget): Transform {
  return format === 'A1'
    ? createA1EncryptStream(master, { budget })
    : createC1EncryptStream(master, { budget, size, attachment: ATTACHMENT });
}
function decryptStream(format: Format, budget: ByteBudget): Transform {
  return format === 'A1'
    ? createA1DecryptStream(keyring, { budget })
    : createC1DecryptStream(keyring, { budget, expected: ATTACHMENT });
}

/** `total` bytes of pseudo-random data (AES-CTR keystream), made chunk by chunk, never all held. */
function* generated(total: number): Generator<Buffer> {
  const keystream = createCipheriv('aes-256-ctr', randomBytes(32), Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  for (let done = 0; done < total; done += CHUNK) {
    yield keystream.update(zeros.subarray(0, Math.min(CHUNK, total - done)));
  }
}

function* sliced(buffers: Iterable<Buffer>, size = CHUNK): Generator<Buffer> {
  for (const buffer of buffers) {
    for (let offset = 0; offset < buffer.length; offset += size) yield buffer.subarray(offset, offset + size);
  }
}

const discard = (): Writable =>
  new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });

const collect = (into: Buffer[]): Writable =>
  new Writable({
    write(chunk: Buffer, _encoding, callback) {
      into.push(chunk);
      callback();
    },
  });

/** Pass-through that hashes what flows by. */
function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
}

const mbPerSecond = (bytes: number, ms: number): number => Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10;

async function timed(run: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

/** Baseline: node:crypto's AES-256-GCM alone on 1 MiB buffers, no streams. */
function rawAesGcm(bytes: number): number {
  const cipher = createCipheriv('aes-256-gcm', randomBytes(32), randomBytes(32));
  const buffer = randomBytes(MiB);
  const start = performance.now();
  for (let done = 0; done < bytes; done += MiB) cipher.update(buffer);
  return mbPerSecond(bytes, performance.now() - start);
}

/** Throughput for objects of 1 MiB: many objects, one stream each, fed 64 KiB at a time. */
async function smallObjects(format: Format, iterations: number): Promise<Throughput> {
  const budget = new ByteBudget(DEFAULT_BUDGET);
  const plain = randomBytes(MiB);
  const cipher: Buffer[] = [];
  await pipeline(Readable.from(sliced([plain])), encryptStream(format, MiB, budget), collect(cipher));
  const encrypted = Buffer.concat(cipher);
  const encryptOnce = () =>
    pipeline(Readable.from(sliced([plain])), encryptStream(format, MiB, budget), discard());
  const decryptOnce = () =>
    pipeline(Readable.from(sliced([encrypted])), decryptStream(format, budget), discard());
  for (let i = 0; i < 10; i++) await encryptOnce().then(decryptOnce);
  const encryptMs = await timed(async () => {
    for (let i = 0; i < iterations; i++) await encryptOnce();
  });
  const decryptMs = await timed(async () => {
    for (let i = 0; i < iterations; i++) await decryptOnce();
  });
  return {
    format,
    objectBytes: MiB,
    iterations,
    encryptMBps: mbPerSecond(iterations * MiB, encryptMs),
    decryptMBps: mbPerSecond(iterations * MiB, decryptMs),
  };
}

/** Throughput for one 256 MiB object. The ciphertext is kept to measure decryption alone. */
async function largeObject(format: Format, source: Buffer[]): Promise<Throughput> {
  const bytes = source.reduce((sum, part) => sum + part.length, 0);
  const budget = new ByteBudget(DEFAULT_BUDGET);
  const cipher: Buffer[] = [];
  const encryptMs = await timed(() =>
    pipeline(Readable.from(source), encryptStream(format, bytes, budget), collect(cipher)),
  );
  const decryptMs = await timed(() =>
    pipeline(Readable.from(sliced(cipher)), decryptStream(format, budget), discard()),
  );
  return {
    format,
    objectBytes: bytes,
    encryptMBps: mbPerSecond(bytes, encryptMs),
    decryptMBps: mbPerSecond(bytes, decryptMs),
  };
}

function peakRssMiB(pid: number): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round((Number(match[1]) / 1024) * 10) / 10 : undefined;
  } catch {
    return undefined;
  }
}

/** Child mode: generate, hash, encrypt, decrypt, hash, all streamed; report own VmHWM. */
async function childRoundTrip(format: Format, bytes: number): Promise<void> {
  const before = createHash('sha256');
  const after = createHash('sha256');
  const budget = new ByteBudget(DEFAULT_BUDGET);
  const ms = await timed(() =>
    pipeline(
      Readable.from(generated(bytes)),
      hashing(before),
      encryptStream(format, bytes, budget),
      decryptStream(format, budget),
      hashing(after),
      discard(),
    ),
  );
  const [sha256In, sha256Out] = [before.digest('hex'), after.digest('hex')];
  process.stdout.write(
    JSON.stringify({ bytes, seconds: ms / 1000, sha256In, sha256Out, peakRssMiB: peakRssMiB(process.pid) }),
  );
}

/** Run a child process, sampling its VmHWM from /proc/<pid>/status until it exits. */
function runChild(
  args: string[],
): Promise<{ stdout: string; peakRssMiB: number | undefined; seconds: number }> {
  return new Promise((resolvePromise, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak: number | undefined;
    const sample = setInterval(() => {
      peak = Math.max(peak ?? 0, peakRssMiB(child.pid!) ?? 0);
    }, 20);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(sample);
      if (code !== 0) reject(new Error(`${args.join(' ')} exited ${code}: ${stderr.trim()}`));
      else resolvePromise({ stdout, peakRssMiB: peak, seconds: (performance.now() - start) / 1000 });
    });
  });
}

type Verified = { sha256Match: boolean } & Record<string, unknown>;

async function streamedRoundTrip(format: Format, bytes: number): Promise<Verified> {
  const { stdout } = await runChild([SELF, '--child-round-trip', format, String(bytes)]);
  const report = JSON.parse(stdout) as {
    sha256In: string;
    sha256Out: string;
    peakRssMiB: number;
    seconds: number;
  };
  return {
    format,
    bytes,
    what: `generated on the fly -> sha256 -> ${format} encrypt -> ${format} decrypt -> sha256, in one child process`,
    sha256Match: report.sha256In === report.sha256Out,
    sha256: report.sha256Out,
    seconds: Math.round(report.seconds * 10) / 10,
    roundTripMBps: mbPerSecond(bytes, report.seconds * 1000),
    peakRssMiB: report.peakRssMiB,
    peakRssTargetMiB: RSS_TARGET_MIB,
    withinTarget: report.peakRssMiB < RSS_TARGET_MIB,
  };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hashing(hash), discard());
  return hash.digest('hex');
}

/** The CLI on files: encrypt then decrypt a generated file; peak RSS sampled per CLI process. */
async function cliRoundTrip(format: Format, bytes: number): Promise<Verified> {
  const dir = mkdtempSync(join(tmpdir(), 'oos-crypto-bench-'));
  try {
    const [plain, encrypted, decrypted, key] = [
      'plain',
      `${ATTACHMENT.uuid}.dcm.enc`,
      'decrypted',
      'master.key',
    ].map((f) => join(dir, f));
    writeFileSync(key!, `${master.key.toString('base64')}\n`, { mode: 0o600 });
    const hash = createHash('sha256');
    await pipeline(Readable.from(generated(bytes)), hashing(hash), createWriteStream(plain!));
    const encrypt = await runChild([
      CLI,
      'encrypt',
      '--format',
      format,
      '--key',
      `1:${key}`,
      plain!,
      encrypted!,
    ]);
    rmSync(plain!);
    const decrypt = await runChild([CLI, 'decrypt', '--key', `1:${key}`, encrypted!, decrypted!]);
    const figures = (run: typeof encrypt) => ({
      seconds: Math.round(run.seconds * 10) / 10,
      MBps: mbPerSecond(bytes, run.seconds * 1000),
      peakRssMiB: run.peakRssMiB,
    });
    return {
      format,
      bytes,
      what: 'orthanc-object-storage encrypt then decrypt on files (sha256 of input vs output); RSS sampled every 20 ms',
      sha256Match: (await sha256File(decrypted!)) === hash.digest('hex'),
      encrypt: figures(encrypt),
      decrypt: figures(decrypt),
      withinTarget: Math.max(encrypt.peakRssMiB ?? Infinity, decrypt.peakRssMiB ?? Infinity) < RSS_TARGET_MIB,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Throughput {
  readonly format: Format;
  readonly objectBytes: number;
  readonly iterations?: number;
  readonly encryptMBps: number;
  readonly decryptMBps: number;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** Both formats, alternating over rounds (order swapped each round); medians and C1/A1 ratios. */
async function compareFormats(
  rounds: number,
  measure: (format: Format) => Promise<Throughput>,
): Promise<object> {
  const runs: Throughput[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const format of round % 2 === 0 ? FORMATS : [...FORMATS].reverse()) runs.push(await measure(format));
  }
  const of = (format: Format, field: 'encryptMBps' | 'decryptMBps') =>
    Math.round(median(runs.filter((r) => r.format === format).map((r) => r[field])) * 10) / 10;
  return {
    objectBytes: runs[0]!.objectBytes,
    rounds,
    A1: { encryptMBps: of('A1', 'encryptMBps'), decryptMBps: of('A1', 'decryptMBps') },
    C1: { encryptMBps: of('C1', 'encryptMBps'), decryptMBps: of('C1', 'decryptMBps') },
    ratioC1toA1: {
      encrypt: Math.round((of('C1', 'encryptMBps') / of('A1', 'encryptMBps')) * 100) / 100,
      decrypt: Math.round((of('C1', 'decryptMBps') / of('A1', 'decryptMBps')) * 100) / 100,
    },
    runs,
  };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child-round-trip') {
    await childRoundTrip(process.argv[3] as Format, Number(process.argv[4]));
    return;
  }
  const source256 = [...generated(256 * MiB)];
  const results = {
    benchmark:
      'client-side encryption, C1 (64 KiB AES-256-GCM chunks) and A1 (one AES-256-GCM body), fed 64 KiB at a time',
    unit: 'MB/s = 10^6 bytes per second; RSS in MiB (VmHWM)',
    node: process.version,
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    date: new Date().toISOString(),
    loadAverage1min: loadavg()[0],
    note: 'the machine may be shared: compare with rawAesGcmMBps, the cipher alone on the same run',
    rawAesGcmMBps: rawAesGcm(256 * MiB),
    throughput1MiB: await compareFormats(2, (format) => smallObjects(format, 300)),
    throughput256MiB: await compareFormats(2, (format) => largeObject(format, source256)),
    streamedRoundTrip1GiB: {
      C1: await streamedRoundTrip('C1', 1024 * MiB),
      A1: await streamedRoundTrip('A1', 1024 * MiB),
    },
    cliRoundTrip1GiB: { C1: await cliRoundTrip('C1', 1024 * MiB), A1: await cliRoundTrip('A1', 1024 * MiB) },
  };
  const json = JSON.stringify(results, null, 2);
  mkdirSync(dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, `${json}\n`);
  process.stdout.write(`${json}\n`);
  const roundTrips = [
    ...Object.values(results.streamedRoundTrip1GiB),
    ...Object.values(results.cliRoundTrip1GiB),
  ];
  if (roundTrips.some((trip) => !trip.sha256Match)) {
    console.error('a round trip changed the bytes: sha256 of input and output differ');
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
