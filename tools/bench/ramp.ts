/**
 * The open-model ramp: rising rates until one is not sustainable, a bisection between the last
 * good and the first failing rate (the ramp's rates are coarse), a step of its own at 80 % of the
 * limit found (the load the create-latency target is defined at), and a final drain in which
 * every task a step left behind must still finish.
 */
import { sleep } from '../shared/timing.js';
import { log, now, T0 } from './clock.js';
import type { BenchOptions } from './options.js';
import type { Sampler } from './process-sampler.js';
import { runStep, type StepResult } from './ramp-step.js';
import { spread } from './task-costs.js';
import type { Target } from './targets/target.js';
import type { RpcCosts } from './server-metrics.js';

/** Pause before the 80 % step: past the longest activity timer a finished ramp step leaves (35 s). */
export const TARGET_LOAD_SETTLE_MS = 40_000;

export interface RampResult {
  target: string;
  steps: StepResult[];
  maxSustainableRate: number | null;
  firstUnsustainable: { rate: number; reason: string } | null;
  /** True when the ramp ran out of rates or time before finding a limit. */
  limitNotReached: boolean;
  note: string;
  leftover: { notCompleted: number; ids: string[]; views: unknown[] };
  /**
   * A step of its own at 80 % of the limit, `targetLoadStepFactor` steps long (the create-latency
   * target's load, with enough requests for a p99 that is not one unlucky request). Not a ramp step.
   */
  targetLoad: StepResult | null;
  /** True when the 80 % step was due but the ramp's time budget left no room for it. */
  targetLoadOutOfTime: boolean;
  /** Ids of finished tasks, spread over the steps: the per-task costs read their histories. */
  finishedSample: string[];
  /** Tasks the ramp's steps created (the denominator of the RPCs per task). */
  createdTotal: number;
  /** Server RPCs over the ramp per task created; null when the metrics were not reachable. */
  rpc: RpcCosts | null;
}

export interface RampOptions {
  /** Time the rest of the run needs after this ramp (counts against --quick's deadline). */
  reserveMs: number;
  describeLeftover?: (ids: string[]) => Promise<unknown[]>;
  /**
   * The rate of the step after the ramp (default: 80 % of this ramp's own limit). AsyncQueue's is
   * 80 % of the baseline's limit, so that both are compared at the same offered load.
   */
  targetLoadRate?: number;
}

export async function ramp(
  target: Target,
  options: BenchOptions,
  sampler: Sampler,
  tagPrefix: string,
  { reserveMs, describeLeftover, targetLoadRate }: RampOptions,
): Promise<RampResult> {
  const started = now();
  const steps: StepResult[] = [];
  let note = '';
  let bestP99: number | null = null;
  let pendingIds: string[] = [];
  const finishedSample: string[] = [];
  let createdTotal = 0;
  // A rate can come twice (repeated --rates, an 80 % step equal to a ramp rate): the tag names
  // the task ids the baseline starts and looks up, so each step gets its own.
  const tags = new StepTags(tagPrefix);
  /** The last step failed and its leftover timers have fired since. */
  let settled = false;
  // Room for the final drain and what follows the ramp within the run's deadline.
  const budgetMs = Math.min(options.rampBudgetMs, T0 + options.deadlineMs - started - options.finalDrainMs - reserveMs);
  const runAt = async (rate: number, stepMs = options.stepMs): Promise<StepResult> => {
    log(`${target.name}: ${rate} tasks/s for ${stepMs / 1000} s`);
    const {
      result: step,
      pendingIds: stepPending,
      finishedIds,
    } = await runStep(target, rate, options, sampler, tags.next(rate), bestP99, stepMs);
    pendingIds.push(...stepPending);
    finishedSample.push(...spread(finishedIds, 10));
    createdTotal += step.created;
    const cpu = Object.entries(step.resources.procs)
      .map(([name, usage]) => `${name} ${usage.cpuPct}%`)
      .join(', ');
    log(
      `  sent ${step.sent} (${step.sentPerSec}/s), done ${step.completedPerSec}/s, errors ${step.errors}, ` +
        `create p50/p99 ${step.createMs.p50}/${step.createMs.p99} ms, e2e p50/p99 ${step.e2eMs.p50}/${step.e2eMs.p99} ms, ` +
        `drain ${step.drainSec} s; CPU ${cpu}, other ${step.resources.otherCpuSec} s → ${step.sustainable ? 'sustainable' : `NOT sustainable: ${step.reason}`}`,
    );
    if (stepMs === options.stepMs) steps.push(step);
    if (step.sustainable && step.e2eMs.p99 !== null)
      bestP99 = bestP99 === null ? step.e2eMs.p99 : Math.min(bestP99, step.e2eMs.p99);
    // Only a ramp step can have another after it (the 80 % step is the ramp's last).
    const anotherStepFollows = stepMs === options.stepMs && (options.refineSteps > 0 || options.targetLoadStepFactor > 0);
    if (step.sustainable || !anotherStepFollows)
      await sleep(1_000); // let the system settle between steps
    else {
      // A failed step is the heaviest yet, and its calls' timeout timers fire ~30-35 s later,
      // inside the bisection step that would follow at once and judge a lower rate under them.
      log(`${target.name}: ${TARGET_LOAD_SETTLE_MS / 1000} s for the failed step's leftover timers to fire`);
      await sleep(TARGET_LOAD_SETTLE_MS);
    }
    settled = !step.sustainable && anotherStepFollows;
    return step;
  };
  const outOfTime = (stepMs = options.stepMs): boolean => steps.length > 0 && now() - started + stepMs + 2_000 > budgetMs;
  const budgetNote = (rate: number): string =>
    `stopped before ${rate}/s: the ramp's time budget (${Math.round(budgetMs / 1000)} s) was used up`;

  let lo: number | null = null;
  let hi: number | null = null;
  for (const rate of options.rates) {
    if (outOfTime()) {
      note = budgetNote(rate);
      break;
    }
    if ((await runAt(rate)).sustainable) lo = rate;
    else {
      hi = rate;
      break;
    }
  }
  // The ramp's rates are coarse; bisect between the last sustainable rate and the first failing
  // one so the limit (and the ratio to the engine's) is not off by a whole step.
  for (let probe = 0; probe < options.refineSteps && lo !== null && hi !== null; probe++) {
    const mid = Math.round((lo + hi) / 2);
    if (mid === lo || mid === hi) break;
    if (outOfTime()) {
      note = budgetNote(mid);
      break;
    }
    if ((await runAt(mid)).sustainable) lo = mid;
    else hi = mid;
  }
  const sustainableSteps = steps.filter((s) => s.sustainable);
  const failed = steps.filter((s) => !s.sustainable).sort((a, b) => a.targetRate - b.targetRate)[0];
  const maxSustainableRate = sustainableSteps.length > 0 ? Math.max(...sustainableSteps.map((s) => s.targetRate)) : null;
  let targetLoad: StepResult | null = null;
  let targetLoadOutOfTime = false;
  const targetLoadMs = options.stepMs * options.targetLoadStepFactor;
  const loadRate =
    targetLoadRate ?? (maxSustainableRate !== null && failed !== undefined ? Math.round(8 * maxSustainableRate) / 10 : undefined);
  if (options.targetLoadStepFactor > 0 && loadRate !== undefined) {
    if (outOfTime(targetLoadMs + TARGET_LOAD_SETTLE_MS)) {
      targetLoadOutOfTime = true;
      note ||= `no step at 80 % of the limit: the ramp's time budget was used up`;
    } else {
      // The failing steps leave work behind that is not this load's: timers of their finished
      // calls (heartbeat and start-to-close timeouts) fire up to ~35 s later. Let them pass.
      if (!settled) {
        log(`${target.name}: ${TARGET_LOAD_SETTLE_MS / 1000} s for the ramp's leftover timers to fire`);
        await sleep(TARGET_LOAD_SETTLE_MS);
      }
      targetLoad = await runAt(loadRate, targetLoadMs);
    }
  }

  // Whatever the steps left behind must still finish: a task that never does is a finding.
  pendingIds = pendingIds.filter((id) => target.completedAt(id) === undefined);
  if (pendingIds.length > 0) {
    log(`${target.name}: waiting up to ${options.finalDrainMs / 1000} s for ${pendingIds.length} unfinished tasks`);
    const deadline = now() + options.finalDrainMs;
    for (let guard = 0; guard < 100_000 && now() < deadline && pendingIds.length > 0; guard++) {
      await sleep(250);
      pendingIds = pendingIds.filter((id) => target.completedAt(id) === undefined);
    }
    log(`${target.name}: ${pendingIds.length} still unfinished`);
  }
  const views = describeLeftover !== undefined && pendingIds.length > 0 ? await describeLeftover(pendingIds.slice(0, 5)) : [];
  return {
    target: target.name,
    steps,
    maxSustainableRate,
    firstUnsustainable: failed !== undefined ? { rate: failed.targetRate, reason: failed.reason } : null,
    limitNotReached: failed === undefined,
    note: note || (failed === undefined ? `every rate up to ${options.rates[options.rates.length - 1]}/s was sustainable` : ''),
    leftover: { notCompleted: pendingIds.length, ids: pendingIds.slice(0, 20), views },
    targetLoad,
    targetLoadOutOfTime,
    finishedSample: spread(
      finishedSample.filter((id) => target.completedAt(id) !== undefined),
      100,
    ),
    createdTotal,
    rpc: null,
  };
}

/** Step tags unique within one ramp: `b-40`, then `b-40.2` if 40/s runs again. */
export class StepTags {
  private readonly used = new Map<number, number>();

  constructor(private readonly prefix: string) {}

  next(rate: number): string {
    const count = (this.used.get(rate) ?? 0) + 1;
    this.used.set(rate, count);
    return count === 1 ? `${this.prefix}${rate}` : `${this.prefix}${rate}.${count}`;
  }
}
