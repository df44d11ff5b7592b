// The main thread's handle on one gateway worker thread: start it, learn when it serves or why it
// failed, stop it, and learn when it died.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { WorkerCommand, WorkerData, WorkerReady, WorkerReport } from './gateway-worker.js';

/** A worker's own start-up error: its message is already the one to show. */
export class WorkerStartError extends Error {
  override name = 'WorkerStartError';
}

/** How long a stopping worker may take to close its storage before it is terminated. */
const WORKER_STOP_GRACE_MS = 2500;

export class GatewayWorker {
  readonly index: number;
  readonly socketPath: string;
  /** Resolves once the worker serves its socket; rejects with why it could not start. */
  readonly ready: Promise<WorkerReady>;
  /** Resolves, with how, when the thread has ended. */
  readonly exited: Promise<string>;
  private readonly thread: Worker;

  constructor(data: WorkerData) {
    this.index = data.index;
    this.socketPath = data.socketPath;
    // The same script as the main thread: every gateway entry ends in serveGateway, which sees
    // the worker data and serves.
    const script = pathToFileURL(resolve(process.argv[1] ?? ''));
    this.thread = new Worker(script, { workerData: data, stdout: false, stderr: false });
    let failure: Error | undefined;
    this.exited = new Promise((done) => {
      this.thread.once('error', (error) => {
        failure = error;
      });
      this.thread.once('exit', (code) =>
        done(failure ? `crashed (${failure.name}: ${failure.message})` : `ended (exit code ${code})`),
      );
    });
    this.ready = new Promise((resolveReady, reject) => {
      this.thread.on('message', (report: WorkerReport) => {
        if (report.type === 'ready') resolveReady(report);
        else reject(new WorkerStartError(report.message));
      });
      void this.exited.then((how) =>
        reject(new Error(`gateway worker ${this.index} ${how} before it served its socket`)),
      );
    });
    this.ready.catch(() => {});
  }

  /** Asks the worker to close its storage and socket; terminates it after a grace period. */
  async stop(): Promise<void> {
    const ended = this.exited.then(() => true);
    this.thread.postMessage({ type: 'stop' } satisfies WorkerCommand);
    const timer = new Promise<boolean>((done) => setTimeout(() => done(false), WORKER_STOP_GRACE_MS).unref());
    if (!(await Promise.race([ended, timer]))) await this.thread.terminate();
  }
}
