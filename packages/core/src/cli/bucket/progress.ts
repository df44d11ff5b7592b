import cliProgress from 'cli-progress';

/** Progress of a long run: a bar on a terminal, a plain line every few seconds otherwise. */
export class Progress {
  private readonly bar: cliProgress.SingleBar | undefined;
  private done = 0;
  private bytes = 0;
  private lastLine = Date.now();

  constructor(
    private readonly label: string,
    private readonly enabled: boolean,
  ) {
    if (enabled && process.stderr.isTTY) {
      this.bar = new cliProgress.SingleBar(
        { stream: process.stderr, format: `${label} {value} objects, {mb} MB | {duration_formatted}` },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(0, 0, { mb: '0.0' });
    }
  }

  tick(bytes: number): void {
    this.done += 1;
    this.bytes += bytes;
    const mb = (this.bytes / 1e6).toFixed(1);
    if (this.bar !== undefined) {
      this.bar.setTotal(this.done);
      this.bar.update(this.done, { mb });
    } else if (this.enabled && Date.now() - this.lastLine >= 5000) {
      this.lastLine = Date.now();
      process.stderr.write(`${this.label}: ${this.done} objects, ${mb} MB\n`);
    }
  }

  stop(): void {
    this.bar?.stop();
  }
}
