// A progress bar on stderr for long reads, drawn only when stderr is a terminal.
export class Progress {
  private done = 0;
  private lastDraw = 0;
  private readonly enabled: boolean;
  private readonly started = process.hrtime.bigint();

  constructor(
    private readonly total: number,
    private readonly label: string,
    stream: NodeJS.WriteStream = process.stderr,
    private readonly out = stream,
  ) {
    // Small reads finish before a bar would be seen.
    this.enabled = Boolean(stream.isTTY) && total >= 8 * 1024 * 1024;
  }

  advance(bytes: number): void {
    this.done += bytes;
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < 100 && this.done < this.total) return;
    this.lastDraw = now;
    const width = 30;
    const frac = this.total === 0 ? 1 : Math.min(1, this.done / this.total);
    const filled = Math.round(frac * width);
    const secs = Number(process.hrtime.bigint() - this.started) / 1e9;
    const mbps = secs > 0 ? this.done / secs / 1e6 : 0;
    this.out.write(`\r${this.label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${(frac * 100).toFixed(0)}% ${mbps.toFixed(0)} MB/s`);
  }

  finish(): void {
    if (this.enabled) this.out.write('\n');
  }
}
