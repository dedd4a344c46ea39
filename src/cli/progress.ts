/**
 * Progress on stderr while a command runs. On a TTY: one line redrawn in place with a bar. Not a
 * TTY: a plain line every few seconds (or nothing at all when `quiet`, e.g. under --json).
 */
export interface ProgressState {
  /** 0..1 of the whole run, for the bar. */
  fraction: number;
  /** What is shown after the bar. */
  text: string;
}

export class Progress {
  private timer: NodeJS.Timeout | null = null;
  private readonly tty: boolean;
  private drawn = false;

  constructor(
    private readonly state: () => ProgressState,
    private readonly quiet: boolean,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = stream.isTTY === true;
  }

  start(): void {
    if (this.timer !== null || (this.quiet && !this.tty)) return;
    this.timer = setInterval(() => this.draw(), this.tty ? 250 : 2000);
    this.timer.unref();
  }

  /** Stops updating and clears the bar (a TTY line is erased, so the report starts clean). */
  stop(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    if (this.tty && this.drawn) this.stream.write('\r\x1b[K');
  }

  private draw(): void {
    const { fraction, text } = this.state();
    if (!this.tty) {
      this.stream.write(`${text}\n`);
      return;
    }
    const width = 24;
    const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`;
    const columns = this.stream.columns ?? 100;
    this.stream.write(`\r\x1b[K${line.length >= columns ? line.slice(0, columns - 1) : line}`);
    this.drawn = true;
  }
}
