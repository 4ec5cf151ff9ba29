/** The benchmark's clock and log lines: every time it measures comes from `now()`. */

/** Epoch milliseconds with sub-millisecond precision (performance.now() based). */
export const now = (): number => performance.timeOrigin + performance.now();

/** When the run started: log lines, the --quick deadline and the wall time count from here. */
export const T0 = now();

export function log(message: string): void {
  const elapsed = ((now() - T0) / 1000).toFixed(1).padStart(6);
  process.stdout.write(`[bench +${elapsed}s] ${message}\n`);
}
