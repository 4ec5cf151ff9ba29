/** The soak's log lines: wall-clock time and seconds since the start, so faults can be lined up with them. */

export const T0 = Date.now();

export function log(message: string): void {
  const elapsed = ((Date.now() - T0) / 1000).toFixed(1).padStart(7);
  process.stdout.write(`${new Date().toISOString()} +${elapsed}s  ${message}\n`);
}
