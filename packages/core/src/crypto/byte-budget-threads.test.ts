// MaxConcurrentInputSize across the gateway's worker threads: one ByteBudget in shared memory.
// The workers run the built module (dist/, made by `pnpm build`), as the gateway's workers do.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  ByteBudget,
  createProcessBudgetMemories,
  installProcessBudgets,
  processBudget,
  type ProcessBudgetMemories,
} from './byte-budget.js';

const BUILT = resolve(import.meta.dirname, '../../dist/crypto/byte-budget.js');

/** A thread that draws on the budget of `memory`; it answers the commands posted to it. */
function startThread(memory: SharedArrayBuffer, limit: number, memories?: ProcessBudgetMemories): Worker {
  if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: run pnpm build in packages/core first`);
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.module).then(({ ByteBudget, installProcessBudgets, processBudget }) => {
      // As a gateway worker does: the memories installed, then the budget its settings set.
      if (workerData.memories) installProcessBudgets(workerData.memories);
      const budget = workerData.memories
        ? processBudget('MaxConcurrentInputSize', workerData.limit)
        : new ByteBudget(workerData.limit, workerData.memory);
      const held = new Map();
      parentPort.on('message', async (command) => {
        if (command.type === 'acquire') {
          const promise = budget.acquire(command.bytes);
          parentPort.postMessage({ type: 'asked', id: command.id });
          held.set(command.id, await promise);
          parentPort.postMessage({ type: 'granted', id: command.id, inUse: budget.inUse });
        } else if (command.type === 'release') {
          held.get(command.id)();
          held.delete(command.id);
        } else if (command.type === 'churn') {
          // Many short reservations of random sizes; the budget must never be over its limit.
          let worst = 0;
          await Promise.all(Array.from({ length: command.streams }, async () => {
            for (let i = 0; i < command.rounds; i++) {
              const release = await budget.acquire(1 + Math.floor(Math.random() * command.maxBytes));
              worst = Math.max(worst, budget.inUse);
              await new Promise((r) => setImmediate(r));
              release();
            }
          }));
          parentPort.postMessage({ type: 'churned', worst });
        }
      });
      parentPort.postMessage({ type: 'started' });
    });
  `;
  return new Worker(code, {
    eval: true,
    workerData: { module: pathToFileURL(BUILT).href, memory, limit, memories },
  });
}

function next(worker: Worker, type: string): Promise<Record<string, unknown>> {
  return new Promise((done) => {
    const listener = (message: Record<string, unknown>) => {
      if (message['type'] !== type) return;
      worker.off('message', listener);
      done(message);
    };
    worker.on('message', listener);
  });
}

describe('ByteBudget shared between threads', () => {
  const threads: Worker[] = [];
  afterEach(async () => {
    await Promise.all(threads.splice(0).map((thread) => thread.terminate()));
  });

  async function start(budget: ByteBudget): Promise<Worker> {
    const thread = startThread(budget.memory, budget.limit);
    threads.push(thread);
    await next(thread, 'started');
    return thread;
  }

  it('refuses memory that is not a budget', () => {
    expect(() => new ByteBudget(10, new SharedArrayBuffer(4))).toThrow(RangeError);
  });

  it('counts the bytes another thread holds, and serves threads in their order of arrival', async () => {
    const budget = new ByteBudget(100);
    const thread = await start(budget);

    thread.postMessage({ type: 'acquire', id: 1, bytes: 60 });
    expect(await next(thread, 'granted')).toMatchObject({ id: 1, inUse: 60 });
    expect(budget.inUse).toBe(60);

    // 50 more do not fit: the main thread waits for the other thread's bytes.
    let mainGranted = false;
    const main = budget.acquire(50).then((release) => {
      mainGranted = true;
      return release;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(mainGranted).toBe(false);

    // The thread asks 10, which would fit, but arrived after the main thread's 50: it waits too.
    const asked = next(thread, 'asked');
    let threadGranted: number | undefined;
    void next(thread, 'granted').then((message) => (threadGranted = message['inUse'] as number));
    thread.postMessage({ type: 'acquire', id: 2, bytes: 10 });
    await asked;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(threadGranted).toBeUndefined();

    thread.postMessage({ type: 'release', id: 1 });
    const releaseMain = await main;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(threadGranted).toBe(60); // 50 (main) + 10, granted after the main thread's request
    expect(budget.inUse).toBe(60);
    releaseMain();
    thread.postMessage({ type: 'release', id: 2 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(budget.inUse).toBe(0);
    expect(budget.peakInUse).toBe(60);
    expect(budget.waitCount).toBe(2);
  });

  it('never holds more than its limit across four threads reserving at once', async () => {
    const budget = new ByteBudget(1000);
    const workers = await Promise.all([1, 2, 3, 4].map(() => start(budget)));
    const results = workers.map((worker) => next(worker, 'churned'));
    for (const worker of workers)
      worker.postMessage({ type: 'churn', streams: 8, rounds: 200, maxBytes: 400 });
    const worst = (await Promise.all(results)).map((result) => result['worst'] as number);
    for (const seen of worst) expect(seen).toBeLessThanOrEqual(1000);
    expect(budget.peakInUse).toBeLessThanOrEqual(1000);
    // 32 streams of up to 400 bytes against 1000: they had to wait, and everything was released.
    expect(budget.waitCount).toBeGreaterThan(0);
    expect(budget.peakInUse).toBeGreaterThan(600);
    expect(budget.inUse).toBe(0);
  }, 60_000);

  it("is what MaxConcurrentInputSize gives every worker once the gateway's memories are installed", async () => {
    expect(processBudget('MaxConcurrentInputSize', 100).memory).not.toBe(
      processBudget('MaxConcurrentInputSize', 100).memory,
    ); // nothing installed: each its own
    const memories = createProcessBudgetMemories();
    const thread = startThread(new SharedArrayBuffer(64), 100, memories);
    threads.push(thread);
    await next(thread, 'started');
    installProcessBudgets(memories);
    const budget = processBudget('MaxConcurrentInputSize', 100);
    expect(budget.memory).toBe(memories.MaxConcurrentInputSize);
    thread.postMessage({ type: 'acquire', id: 1, bytes: 70 });
    await next(thread, 'granted');
    expect(budget.inUse).toBe(70);
    thread.postMessage({ type: 'release', id: 1 });
    const release = await budget.acquire(100);
    expect(budget.inUse).toBe(100);
    release();
  });
});

describe('the upload budget across worker threads', () => {
  it("is one budget: a worker's upload reservations count in the gateway's shared memory", async () => {
    const uploadBuffers = resolve(import.meta.dirname, '../../dist/storage/upload-buffers.js');
    if (!existsSync(uploadBuffers)) throw new Error(`${uploadBuffers} is missing: run pnpm build first`);
    const memories = createProcessBudgetMemories();
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      (async () => {
        const { installProcessBudgets } = await import(workerData.byteBudget);
        const { UploadBuffers } = await import(workerData.uploadBuffers);
        installProcessBudgets(workerData.memories); // as a gateway worker does, before any client
        const held = await new UploadBuffers(4096).acquire(3000);
        parentPort.postMessage({ type: 'held' });
        parentPort.once('message', () => { held.release(); parentPort.postMessage({ type: 'released' }); });
      })();
    `;
    const thread = new Worker(code, {
      eval: true,
      workerData: {
        byteBudget: pathToFileURL(BUILT).href,
        uploadBuffers: pathToFileURL(uploadBuffers).href,
        memories,
      },
    });
    try {
      await next(thread, 'held');
      const shared = new ByteBudget(48 * 1024 * 1024, memories.UploadBuffers);
      expect(shared.inUse).toBe(3000);
      thread.postMessage('release');
      await next(thread, 'released');
      expect(shared.inUse).toBe(0);
    } finally {
      await thread.terminate();
    }
  });

  it('counts the free buffers every worker keeps, and has them dropped when a reservation needs the room', async () => {
    const uploadBuffers = resolve(import.meta.dirname, '../../dist/storage/upload-buffers.js');
    if (!existsSync(uploadBuffers)) throw new Error(`${uploadBuffers} is missing: run pnpm build first`);
    const budget = new ByteBudget(1000);
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      (async () => {
        const { ByteBudget } = await import(workerData.byteBudget);
        const { UploadBuffers } = await import(workerData.uploadBuffers);
        const buffers = new UploadBuffers(100, new ByteBudget(1000, workerData.memory));
        // Eight parts at once, then all released: the thread keeps them for reuse, and goes idle.
        const parts = await Promise.all(Array.from({ length: 8 }, () => buffers.acquire(100)));
        for (const part of parts) part.release();
        parentPort.on('message', () => {}); // stays alive, idle, as a gateway worker between calls
        parentPort.postMessage({ type: 'kept' });
      })();
    `;
    const thread = new Worker(code, {
      eval: true,
      workerData: {
        byteBudget: pathToFileURL(BUILT).href,
        uploadBuffers: pathToFileURL(uploadBuffers).href,
        memory: budget.memory,
      },
    });
    try {
      await next(thread, 'kept');
      expect(budget.kept).toBe(800); // the idle thread's free buffers count here too
      expect(budget.tryKeep(300)).toBe(false); // so no other thread may keep beyond the limit

      const { UploadBuffers } = (await import(
        pathToFileURL(uploadBuffers).href
      )) as typeof import('../storage/upload-buffers.js');
      const mine = new UploadBuffers(100, budget);
      const held = await Promise.all(Array.from({ length: 3 }, () => mine.acquire(100)));
      // 300 reserved beside 800 kept: the idle thread is asked, and drops what does not fit.
      for (let waited = 0; budget.inUse + budget.kept > 1000 && waited < 2000; waited += 10)
        await new Promise((done) => setTimeout(done, 10));
      expect(budget.inUse).toBe(300);
      expect(budget.kept).toBe(700);
      for (const part of held) part.release();
      expect(budget.inUse + budget.kept).toBeLessThanOrEqual(1000);
    } finally {
      await thread.terminate();
    }
  });
});
