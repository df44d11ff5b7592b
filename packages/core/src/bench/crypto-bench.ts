/**
 * Crypto benchmark (`pnpm bench` in packages/core): C1 and A1 encrypt/decrypt throughput at 1 MiB
 * and 256 MiB in the same run (alternating, 2 rounds), and the peak RSS of streamed 1 GiB round
 * trips (in-process streams, and the CLI on files), each measured in a child process. Prints JSON
 * and writes bench-results/crypto.json.
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
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
import { pipeInto } from '../storage/pipe-into.js';

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
function decryptStream(format: Format, budget: ByteBudget, size?: number): Transform {
  return format === 'A1'
    ? createA1DecryptStream(keyring, { budget, size })
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

/**
 * Feeds `buffers` to `stream` 64 KiB at a time as the storage layers do (`pipeInto` from a
 * readable, output taken from 'data' events, as forEachUploadPart and the gateway's reply do) and
 * hands each output chunk to `take`. Cheaper than stream.pipeline: its per-call AbortController
 * and async plumbing would count as the format's cost (about 0.2-0.3 ms per MiB here).
 */
function feed(
  stream: Transform,
  buffers: Iterable<Buffer>,
  take: (chunk: Buffer) => void = () => {},
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    stream.on('data', take);
    stream.once('end', resolvePromise);
    stream.once('error', reject);
    pipeInto(Readable.from(sliced(buffers)), stream);
  });
}

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

/** AES-256-GCM alone on one 1 MiB object, 64 KiB per call as the streams do, no stream: the floor. */
function rawEncrypt(plain: Buffer): { sealed: Buffer[]; tag: Buffer } {
  const cipher = createCipheriv('aes-256-gcm', RAW_KEY, RAW_IV);
  const sealed = [...sliced([plain])].map((piece) => cipher.update(piece));
  cipher.final();
  return { sealed, tag: cipher.getAuthTag() };
}
function rawDecrypt(sealed: readonly Buffer[], tag: Buffer): void {
  const decipher = createDecipheriv('aes-256-gcm', RAW_KEY, RAW_IV);
  decipher.setAuthTag(tag);
  for (const piece of sealed) decipher.update(piece);
  decipher.final();
}
const RAW_KEY = randomBytes(32);
const RAW_IV = randomBytes(12);

/** One measurement: wall-clock MB/s and MB per CPU-second of this process (from process.cpuUsage). */
async function measured(bytes: number, run: () => Promise<void>): Promise<{ MBps: number; cpuMBps: number }> {
  const cpu = process.cpuUsage();
  const ms = await timed(run);
  const used = process.cpuUsage(cpu);
  return { MBps: mbPerSecond(bytes, ms), cpuMBps: mbPerSecond(bytes, (used.user + used.system) / 1000) };
}

/** Encrypt and decrypt 1 MiB objects, one stream (or one raw cipher) each, fed 64 KiB at a time. */
async function smallObjects(contender: Contender, iterations: number): Promise<SmallObjectRun> {
  const budget = new ByteBudget(DEFAULT_BUDGET);
  const plain = randomBytes(MiB);
  let encryptOnce: () => Promise<void>;
  let decryptOnce: () => Promise<void>;
  if (contender === 'raw') {
    const { sealed, tag } = rawEncrypt(plain);
    encryptOnce = async () => void rawEncrypt(plain);
    decryptOnce = async () => rawDecrypt(sealed, tag);
  } else {
    const cipher: Buffer[] = [];
    await feed(encryptStream(contender, MiB, budget), [plain], (chunk) => cipher.push(chunk));
    const encrypted = Buffer.concat(cipher);
    encryptOnce = () => feed(encryptStream(contender, MiB, budget), [plain]);
    decryptOnce = () => feed(decryptStream(contender, budget, encrypted.length), [encrypted]);
  }
  for (let i = 0; i < 10; i++) await encryptOnce().then(decryptOnce);
  const encrypt = await measured(iterations * MiB, async () => {
    for (let i = 0; i < iterations; i++) await encryptOnce();
  });
  const decrypt = await measured(iterations * MiB, async () => {
    for (let i = 0; i < iterations; i++) await decryptOnce();
  });
  return {
    contender,
    encryptMBps: encrypt.MBps,
    decryptMBps: decrypt.MBps,
    encryptCpuMBps: encrypt.cpuMBps,
    decryptCpuMBps: decrypt.cpuMBps,
  };
}

type Contender = Format | 'raw';
interface SmallObjectRun {
  readonly contender: Contender;
  readonly encryptMBps: number;
  readonly decryptMBps: number;
  readonly encryptCpuMBps: number;
  readonly decryptCpuMBps: number;
}
const SMALL_FIELDS = ['encryptMBps', 'decryptMBps', 'encryptCpuMBps', 'decryptCpuMBps'] as const;

/**
 * 1 MiB objects: the raw cipher, A1 and C1 in every round, the order rotated each round, all warmed
 * up; medians, and each format's ratio to the raw cipher taken within each round (then the median).
 */
async function compareSmallObjects(
  rounds: number,
  iterations: number,
): Promise<{ raw: Record<string, number> } & Record<string, unknown>> {
  const contenders: Contender[] = ['raw', ...FORMATS];
  const perRound: Array<Record<Contender, SmallObjectRun>> = [];
  for (let round = 0; round < rounds; round++) {
    const result = {} as Record<Contender, SmallObjectRun>;
    for (let i = 0; i < contenders.length; i++) {
      const contender = contenders[(i + round) % contenders.length]!;
      result[contender] = await smallObjects(contender, iterations);
    }
    perRound.push(result);
  }
  const med = (pick: (r: Record<Contender, SmallObjectRun>) => number, digits = 1) =>
    Math.round(median(perRound.map(pick)) * 10 ** digits) / 10 ** digits;
  const figures = (contender: Contender): Record<string, number> =>
    Object.fromEntries(SMALL_FIELDS.map((field) => [field, med((r) => r[contender][field])]));
  const ratios = (format: Format): Record<string, number> =>
    Object.fromEntries(SMALL_FIELDS.map((field) => [field, med((r) => r[format][field] / r.raw[field], 3)]));
  return {
    objectBytes: MiB,
    iterations,
    rounds,
    what:
      'MBps: wall clock; CpuMBps: MB per CPU-second of this process. raw: node:crypto AES-256-GCM alone, ' +
      'one cipher per object, 64 KiB per update, no stream; ratioToRaw: per round, then the median',
    raw: figures('raw'),
    A1: figures('A1'),
    C1: figures('C1'),
    ratioToRaw: { A1: ratios('A1'), C1: ratios('C1') },
    runs: perRound,
  };
}

/** Throughput for one 256 MiB object. The ciphertext is kept to measure decryption alone. */
async function largeObject(format: Format, source: Buffer[]): Promise<Throughput> {
  const bytes = source.reduce((sum, part) => sum + part.length, 0);
  const budget = new ByteBudget(DEFAULT_BUDGET);
  const cipher: Buffer[] = [];
  const encryptMs = await timed(() =>
    feed(encryptStream(format, bytes, budget), source, (chunk) => cipher.push(chunk)),
  );
  const stored = cipher.reduce((sum, part) => sum + part.length, 0);
  const decryptMs = await timed(() => feed(decryptStream(format, budget, stored), cipher));
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
  const throughput1MiB = await compareSmallObjects(3, 300);
  const results = {
    benchmark:
      'client-side encryption, C1 (64 KiB AES-256-GCM chunks) and A1 (one AES-256-GCM body), fed 64 KiB at a time ' +
      'through pipeInto, output taken from data events (as the storage layers do); A1 decryption given the stored size',
    unit: 'MB/s = 10^6 bytes per second; RSS in MiB (VmHWM)',
    node: process.version,
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    date: new Date().toISOString(),
    loadAverage1min: loadavg()[0],
    note: 'the machine may be shared: compare with the raw cipher measured in the same rounds (throughput1MiB.raw, ratioToRaw)',
    rawAesGcmMBps: throughput1MiB.raw['encryptMBps'],
    throughput1MiB,
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
