/**
 * Latency percentiles for the benchmark and the soak, computed by HdrHistogram rather than by hand.
 *
 * HdrHistogram records integers, so each latency is rounded to the resolution its report keeps:
 * `unitsPerMs` 10 for the benchmark (0.1 ms, performance.now() times), 1 for the soak (whole
 * Date.now() milliseconds). Rounding first changes nothing the report shows, since the report
 * rounds the same way. Five significant digits, the most HdrHistogram keeps, make every value below
 * 262,144 units (26 s for the benchmark, 262 s for the soak) exact, and larger ones exact to 1 part
 * in 131,072. Percentiles are nearest-rank, as HdrHistogram counts them (its rank avoids the
 * floating-point error that made `ceil(0.999 × 1000)` 1000 instead of 999).
 */
import { build } from 'hdr-histogram-js';

export interface Percentiles {
  n: number;
  p50: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
}

export function latencyPercentiles(valuesMs: Iterable<number>, unitsPerMs: number): Percentiles {
  const units = [...valuesMs].filter((value) => Number.isFinite(value)).map((value) => Math.round(value * unitsPerMs));
  if (units.length === 0) return { n: 0, p50: null, p99: null, p999: null, max: null };
  // Only non-negative integers can be recorded, and a held call's dispatch time (202 read → callback
  // at the receiver) is negative when the callback comes in before the bench has read the 202: so
  // every value is shifted by the lowest, and back.
  let lowest = 0;
  let highest = 0;
  for (const value of units) {
    lowest = Math.min(lowest, value);
    highest = Math.max(highest, value);
  }
  // Sized for these values up front: one allocation, and a step's few thousand values take
  // milliseconds (the smaller 'packed' layout took a second).
  const histogram = build({
    bitBucketSize: 32,
    numberOfSignificantValueDigits: 5,
    highestTrackableValue: Math.max(2, highest - lowest),
  });
  try {
    for (const value of units) histogram.recordValue(value - lowest);
    const toMs = (recorded: number): number => (recorded + lowest) / unitsPerMs;
    return {
      n: units.length,
      p50: toMs(histogram.getValueAtPercentile(50)),
      p99: toMs(histogram.getValueAtPercentile(99)),
      p999: toMs(histogram.getValueAtPercentile(99.9)),
      max: toMs(histogram.maxValue),
    };
  } finally {
    histogram.destroy();
  }
}
