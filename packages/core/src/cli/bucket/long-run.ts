import { Progress } from './progress.js';

/**
 * What every long bucket command shares: a progress display, Ctrl-C that stops taking new objects
 * (what is under way finishes; running the command again resumes), and the clock for the summary.
 */
export class LongRun {
  readonly progress: Progress;
  private readonly started = performance.now();
  private stopped = false;
  private readonly onSignal = (): void => {
    this.stopped = true;
    process.stderr.write(
      `${this.label}: interrupted, finishing the objects under way (Ctrl-C again to quit now)\n`,
    );
  };

  constructor(
    private readonly label: string,
    showProgress: boolean,
  ) {
    this.progress = new Progress(label, showProgress);
    process.once('SIGINT', this.onSignal);
  }

  get interrupted(): boolean {
    return this.stopped;
  }

  /** Stop the progress display and the signal handler; the seconds since the start. */
  finish(): number {
    this.progress.stop();
    process.removeListener('SIGINT', this.onSignal);
    return (performance.now() - this.started) / 1000;
  }
}

/** Rates for a summary, rounded for humans and stable for scripts. */
export function rates(objects: number, bytes: number, seconds: number) {
  return {
    seconds: Number(seconds.toFixed(3)),
    objectsPerSecond: Number((objects / seconds).toFixed(1)),
    megabytesPerSecond: Number((bytes / 1e6 / seconds).toFixed(2)),
  };
}
