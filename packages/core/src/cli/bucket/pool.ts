import { UsageError } from '../command.js';

/** Run `work` on every item with at most `concurrency` at once; stops taking items once `stopped()`. */
export async function forEachConcurrent<T>(
  items: AsyncIterable<T>,
  concurrency: number,
  work: (item: T) => Promise<void>,
  stopped: () => boolean = () => false,
): Promise<void> {
  const iterator = items[Symbol.asyncIterator]();
  const worker = async (): Promise<void> => {
    while (!stopped()) {
      const next = await iterator.next();
      if (next.done === true) return;
      await work(next.value);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** The options every command over a whole bucket takes. */
export const bucketCommandOptions = {
  config: { type: 'string' },
  concurrency: { type: 'string' },
  'dry-run': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/** `--config` (required) and `--concurrency` (1 to 256, default 8) of a bucket command. */
export function bucketCommandBasics(values: {
  config?: string | undefined;
  concurrency?: string | undefined;
}): {
  config: string;
  concurrency: number;
} {
  if (values.config === undefined) throw new UsageError('--config FILE|DIR is required');
  if (values.concurrency === undefined) return { config: values.config, concurrency: 8 };
  const n = Number(values.concurrency);
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new UsageError(`--concurrency ${values.concurrency}: expected an integer from 1 to 256`);
  }
  return { config: values.config, concurrency: n };
}
