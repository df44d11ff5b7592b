import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

/** The A1 vector set under test: `A1_VECTORS_DIR`, else the fixture copy of ../shared/a1-vectors. */
export const VECTORS_DIR =
  process.env.A1_VECTORS_DIR ??
  resolve(dirname(fileURLToPath(import.meta.url)), '../../../fixtures/a1-vectors');

export interface VectorManifest {
  keySet: { current: number; previous: number[] };
  keys: { keyId: number; keyFile: string; inKeySet: boolean }[];
  vectors: {
    name: string;
    keyId: number;
    plaintextFile: string;
    ciphertextFile: string;
    plaintextSize: number;
    ciphertextSize: number;
  }[];
  negative: {
    name: string;
    file: string;
    size: number;
    mutation: string;
    cpp: { stringApi: { message: string; exceptionType: string } };
  }[];
}

export const manifest = JSON.parse(
  readFileSync(join(VECTORS_DIR, 'manifest.json'), 'utf8'),
) as VectorManifest;

export const vectorPath = (file: string): string => join(VECTORS_DIR, file);

export function keyFileOf(id: number): string {
  const entry = manifest.keys.find((k) => k.keyId === id);
  if (entry === undefined) throw new Error(`manifest has no key ${id}`);
  return vectorPath(entry.keyFile);
}

/** Feed `input` to `transform` in chunks of `chunkSize` bytes and collect its output. */
export async function runThrough(transform: Transform, input: Buffer, chunkSize = 65536): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks(input, chunkSize)), transform, collectInto(out));
  return Buffer.concat(out);
}

/** Like `runThrough`, but returns the error the stream failed with and the bytes it let out first. */
export async function runExpectingError(
  transform: Transform,
  input: Buffer,
  chunkSize = 65536,
): Promise<{ error: Error; emitted: number }> {
  const out: Buffer[] = [];
  try {
    await pipeline(Readable.from(chunks(input, chunkSize)), transform, collectInto(out));
  } catch (error) {
    return { error: error as Error, emitted: Buffer.concat(out).length };
  }
  throw new Error(`the stream ended without error after ${Buffer.concat(out).length} bytes`);
}

export function* chunks(input: Buffer, chunkSize: number): Generator<Buffer> {
  for (let offset = 0; offset < input.length; offset += chunkSize) {
    yield input.subarray(offset, offset + chunkSize);
  }
}

export function collectInto(out: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk);
      callback();
    },
  });
}
