import { open, type FileHandle } from 'node:fs/promises';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AtomicOutput } from './atomic-output.js';

/** Mode of files the CLI writes: they hold keys, patients' data or both. */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Stream IN through `transform` into OUT. OUT appears only once the transform has ended
 * without error (for decryption: after the GCM tag verified); on any failure nothing is left.
 */
export async function transformFile(
  inPath: string,
  outPath: string,
  transform: Transform,
  overwrite: boolean,
): Promise<void> {
  let input: FileHandle;
  try {
    input = await open(inPath, 'r');
  } catch (error) {
    throw new Error(`cannot read ${inPath} (${(error as NodeJS.ErrnoException).code})`);
  }
  let output: AtomicOutput;
  try {
    output = await AtomicOutput.create(outPath, { mode: PRIVATE_FILE_MODE, overwrite });
  } catch (error) {
    await input.close();
    throw error;
  }
  try {
    // The read stream closes the input file when it ends or fails.
    await pipeline(input.createReadStream({ highWaterMark: 1 << 20 }), transform, output.stream());
    await output.commit();
  } finally {
    await output.abort();
  }
}
