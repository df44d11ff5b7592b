import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Transform } from 'node:stream';
import { ByteBudget } from './byte-budget.js';
import { createA1DecryptStream } from './a1-decrypt-stream.js';
import { createA1EncryptStream } from './a1-encrypt-stream.js';
import { Keyring } from './keyring.js';
import { runThrough } from './__tests__/helpers.js';

const master = { id: 11, key: randomBytes(32) };
const keyring = new Keyring(master);

/** Write the same-sized chunks to every stream in turn, so their transforms compete for the budget. */
async function driveConcurrently(
  streams: Transform[],
  inputs: Buffer[],
  chunkSize: number,
): Promise<Buffer[]> {
  const outputs = streams.map((stream) => {
    const parts: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => parts.push(chunk));
    return once(stream, 'end').then(() => Buffer.concat(parts));
  });
  const length = Math.max(...inputs.map((input) => input.length));
  for (let offset = 0; offset < length; offset += chunkSize) {
    streams.forEach((stream, i) => {
      const part = inputs[i]!.subarray(offset, offset + chunkSize);
      if (part.length > 0) stream.write(part);
    });
    await new Promise((resolve) => setImmediate(resolve));
  }
  streams.forEach((stream) => stream.end());
  return Promise.all(outputs);
}

describe('ByteBudget', () => {
  it('makes a request wait until enough bytes are released, first come first served', async () => {
    const budget = new ByteBudget(100);
    const releaseFirst = await budget.acquire(80);
    const order: string[] = [];
    const big = budget.acquire(50).then((release) => {
      order.push('big');
      return release;
    });
    const small = budget.acquire(10).then((release) => {
      order.push('small');
      return release;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual([]);
    expect(budget.inUse).toBe(80);
    releaseFirst();
    (await big)();
    (await small)();
    expect(order).toEqual(['big', 'small']);
    expect(budget.inUse).toBe(0);
    expect(budget.peakInUse).toBe(80);
    expect(budget.waitCount).toBe(2);
  });

  it('refuses requests larger than the limit and invalid limits', async () => {
    const budget = new ByteBudget(10);
    await expect(budget.acquire(11)).rejects.toThrow(RangeError);
    await expect(budget.acquire(0)).rejects.toThrow(RangeError);
    expect(() => new ByteBudget(0)).toThrow(RangeError);
  });

  it('releasing twice releases once', async () => {
    const budget = new ByteBudget(10);
    const release = await budget.acquire(4);
    await budget.acquire(3);
    release();
    release();
    expect(budget.inUse).toBe(3);
  });
});

describe('MaxConcurrentInputSize across concurrent streams', () => {
  const chunkSize = 16 * 1024;
  const limit = 2 * chunkSize;
  const inputs = Array.from({ length: 8 }, (_, i) => randomBytes(256 * 1024 + i * 100));

  it('bounds the bytes being encrypted and decrypted at once, and every object round-trips', async () => {
    // Each A1 slice is reserved, processed and released in one synchronous step, so streams of one
    // thread never overlap; bytes held elsewhere (another stream's C1 chunk, another worker) make them wait.
    const budget = new ByteBudget(limit);
    const heldElsewhere = await budget.acquire(limit);
    const encrypting = driveConcurrently(
      inputs.map(() => createA1EncryptStream(master, { budget })),
      inputs,
      chunkSize,
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(budget.waitCount).toBeGreaterThan(0);
    expect(budget.inUse).toBe(limit);
    heldElsewhere();
    const encrypted = await encrypting;
    expect(budget.peakInUse).toBe(limit);
    expect(budget.inUse).toBe(0);

    const decryptBudget = new ByteBudget(limit);
    const decrypted = await driveConcurrently(
      inputs.map(() => createA1DecryptStream(keyring, { budget: decryptBudget })),
      encrypted,
      chunkSize,
    );
    expect(decryptBudget.peakInUse).toBeGreaterThan(0);
    expect(decryptBudget.peakInUse).toBeLessThanOrEqual(limit);
    expect(decryptBudget.inUse).toBe(0);
    decrypted.forEach((plain, i) => expect(plain.equals(inputs[i]!)).toBe(true));
  });

  it('streams an object larger than the whole budget', async () => {
    const budget = new ByteBudget(1000);
    const input = randomBytes(300_000);
    const encrypted = await runThrough(createA1EncryptStream(master, { budget }), input, 64 * 1024);
    const decrypted = await runThrough(createA1DecryptStream(keyring, { budget }), encrypted, 64 * 1024);
    expect(decrypted.equals(input)).toBe(true);
    expect(budget.peakInUse).toBe(1000);
    expect(budget.inUse).toBe(0);
  });
});
