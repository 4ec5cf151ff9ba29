/** How the benchmark reports measured values: rounded, and latencies as percentiles. */
import { latencyPercentiles, type Percentiles } from '../shared/latency.js';

/** Rounded to `digits` decimals; null for no value (or not a finite one). */
export function round(value: number | null | undefined, digits = 1): number | null {
  if (value === null || value === undefined || !Number.isFinite(value)) return null;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Milliseconds: count, p50, p99, p99.9 and max, to 0.1 ms. */
export type Distribution = Percentiles;

export function distribution(valuesMs: readonly number[]): Distribution {
  // 0.1 ms, the precision the report keeps; round() below only tidies the floating-point division.
  const { n, p50, p99, p999, max } = latencyPercentiles(valuesMs, 10);
  return { n, p50: round(p50), p99: round(p99), p999: round(p999), max: round(max) };
}
