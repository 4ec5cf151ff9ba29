/**
 * The issue's latency target, measured where the capacity runs measure throughput: after a
 * target's closed loop (drained), a fixed rate at 80 % of the baseline's capacity for as long as
 * the loop ran, its end-to-end latencies (intended send → webhook, the ramp's measure:
 * ramp-step.ts). Both targets of a round step at the same rate, from the baseline's closed loop
 * measured last, so a slower hour sets a lower rate for both.
 */
import { log } from './clock.js';
import { round, type Distribution } from './distribution.js';
import type { BenchOptions } from './options.js';
import type { Sampler } from './process-sampler.js';
import { runStep } from './ramp-step.js';
import type { Target } from './targets/target.js';

/** Of the baseline's capacity: the issue's "80 % of that rate". */
export const LATENCY_STEP_SHARE = 0.8;

export interface LatencyStep {
  /** Tasks per second sent (80 % of the baseline's last closed loop). */
  rate: number;
  e2eMs: Distribution;
  completedPerSec: number;
  /** The ramp's verdict: every task created and finished, completions keeping up, p99 bounded. */
  held: boolean;
  reason: string;
  /**
   * Every finished task's e2e latency, whole ms: the report pools a target's steps for a p99 over
   * all of them (one step's p99 is its ten slowest tasks of about a thousand). Absent in older results.
   */
  e2eSamplesMs?: number[];
}

/**
 * The rate of each round's latency steps: 80 % of the baseline capacity measured last, fixed by
 * the round's first step so that both of its targets step at the same rate. A round that starts
 * with the baseline takes its own capacity, one that starts with AsyncQueue the round before's.
 */
export class LatencyStepRates {
  private lastBaseline: number | undefined;
  private readonly byRound = new Map<number, number>();

  /** `baselineCapacity`: the baseline's closed loop this run just measured. Null: none measured yet. */
  rateFor(roundNo: number, baselineCapacity?: number): number | null {
    if (baselineCapacity !== undefined && baselineCapacity > 0) this.lastBaseline = baselineCapacity;
    const fixed = this.byRound.get(roundNo);
    if (fixed !== undefined) return fixed;
    if (this.lastBaseline === undefined) return null;
    const rate = round(this.lastBaseline * LATENCY_STEP_SHARE, 1) ?? 0;
    this.byRound.set(roundNo, rate);
    return rate;
  }
}

export async function measureLatencyStep(
  target: Target,
  rate: number,
  options: BenchOptions,
  sampler: Sampler,
  tag: string,
  seconds: number,
): Promise<LatencyStep> {
  const { result, e2eSamplesMs } = await runStep(target, rate, options, sampler, `${tag}-at80`, null, seconds * 1000);
  log(
    `  ${tag} at ${rate}/s: e2e p50/p99 ${result.e2eMs.p50}/${result.e2eMs.p99} ms, ` +
      `${result.completedPerSec}/s done, ${result.sustainable ? 'held' : `not held (${result.reason})`}`,
  );
  return {
    rate,
    e2eMs: result.e2eMs,
    completedPerSec: result.completedPerSec,
    held: result.sustainable,
    reason: result.reason,
    e2eSamplesMs: e2eSamplesMs.map(Math.round),
  };
}
