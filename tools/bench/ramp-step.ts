/**
 * One step of a ramp: a rate held for a step's length, then a bounded drain, measured into the
 * step's latencies, completion rate, CPU per task, and the verdict whether the rate is sustainable.
 */
import { sleep, within } from '../shared/timing.js';
import { now } from './clock.js';
import { distribution, round, type Distribution } from './distribution.js';
import { sendAtRate } from './load-generator.js';
import type { BenchOptions } from './options.js';
import type { ResourceUsage, Sampler } from './process-sampler.js';
import type { Target } from './targets/target.js';

export interface StepResult {
  targetRate: number;
  seconds: number;
  sent: number;
  /** Sends per second the generator achieved (below target: this process could not keep up). */
  sentPerSec: number;
  created: number;
  errors: number;
  errorKinds: Record<string, number>;
  /** Scheduled send → answer (202 / start returned), ms. */
  createMs: Distribution;
  /** Scheduled send → webhook received (no-op webhook activity ran), ms. */
  e2eMs: Distribution;
  /**
   * Completions per second over the step's last three quarters, against the arrival rate: in a
   * steady state (any constant latency below a quarter step) the two are equal; a backlog shows as less.
   */
  completedPerSec: number;
  /** completedPerSec / target rate. */
  completionRatio: number;
  completedTotal: number;
  notCompleted: number;
  notCompletedIds: string[];
  drainSec: number;
  /** Scheduled → actually sent, ms: how far behind the generator ran. */
  sendLagMs: Distribution;
  /** During the load only (CPU % = how busy each process was at this rate). */
  resources: ResourceUsage;
  /** Load + drain: all the work of this step's tasks; CPU ms per task comes from this. */
  cpuMsPerTask: Record<string, number>;
  sustainable: boolean;
  reason: string;
}

/**
 * One rate for `stepMs`, then a bounded drain. `pendingIds`: every created task not finished yet;
 * `finishedIds`: those that did (the per-task costs read a sample of their histories).
 */
export async function runStep(
  target: Target,
  rate: number,
  options: BenchOptions,
  sampler: Sampler,
  stepTag: string,
  bestP99: number | null,
  stepMs = options.stepMs,
): Promise<{ result: StepResult; pendingIds: string[]; finishedIds: string[]; e2eSamplesMs: number[] }> {
  // Two windows: CPU % during the load alone, and CPU per task over load and drain together.
  const window = sampler.open();
  const wholeWindow = sampler.open();
  const { records, inFlight, t0, lastSentAt } = await sendAtRate(target, rate, stepMs, stepTag);
  const loadEnd = t0 + stepMs;
  await sleep(loadEnd - now());
  const resources = window.close();
  target.assertAlive();

  // Creates still in flight answer (or time out at 30 s) before anything is counted.
  await within(Promise.allSettled([...inFlight]), 35_000);
  const drainStart = now();
  for (let guard = 0; guard < 100_000; guard++) {
    const pending = records.some(
      (r) => r.result?.ok === true && r.result.id !== undefined && target.completedAt(r.result.id) === undefined,
    );
    if (!pending || now() - loadEnd > options.drainMaxMs) break;
    await sleep(100);
  }
  const drainSec = (now() - drainStart) / 1000;
  const whole = wholeWindow.close();

  const createLatencies: number[] = [];
  const e2e: number[] = [];
  const sendLag: number[] = [];
  const errorKinds: Record<string, number> = {};
  let created = 0;
  let completedLate = 0;
  let completedTotal = 0;
  const lateStart = t0 + stepMs / 4;
  const notCompletedIds: string[] = [];
  const finishedIds: string[] = [];
  for (const record of records) {
    sendLag.push(record.sentAt - record.intendedAt);
    const result = record.result;
    if (result === undefined) {
      errorKinds['no answer within 35 s'] = (errorKinds['no answer within 35 s'] ?? 0) + 1;
      continue;
    }
    if (!result.ok || result.id === undefined) {
      const kind = result.error ?? 'error';
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
      continue;
    }
    created++;
    if (record.answeredAt !== undefined) createLatencies.push(record.answeredAt - record.intendedAt);
    const doneAt = target.completedAt(result.id);
    if (doneAt === undefined) {
      notCompletedIds.push(result.id);
      continue;
    }
    completedTotal++;
    finishedIds.push(result.id);
    e2e.push(doneAt - record.intendedAt);
    if (doneAt > lateStart && doneAt <= loadEnd) completedLate++;
  }
  const errors = records.length - created;
  const e2eMs = distribution(e2e);
  const sentPerSec = records.length > 1 ? (records.length - 1) / Math.max(0.001, (lastSentAt - t0) / 1000) : records.length;
  const completedPerSec = completedLate / ((0.75 * stepMs) / 1000);
  const completionRatio = completedPerSec / rate;

  let reason = 'ok';
  let sustainable = true;
  if (errors > 0) {
    sustainable = false;
    reason = `${errors} errors (${Object.entries(errorKinds)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')})`;
  } else if (sentPerSec < rate * 0.95) {
    sustainable = false;
    reason = `load generator reached only ${sentPerSec.toFixed(1)}/s (this process is CPU-starved)`;
  } else if (completionRatio < 0.95) {
    sustainable = false;
    reason = `completions ${completedPerSec.toFixed(1)}/s = ${(completionRatio * 100).toFixed(0)}% of arrivals (last 3/4 of the step)`;
  } else if (e2eMs.p99 !== null && e2eMs.p99 > Math.max(2_000, 10 * (bestP99 ?? Number.POSITIVE_INFINITY))) {
    sustainable = false;
    reason = `e2e p99 ${Math.round(e2eMs.p99)} ms > 10x the best step's ${Math.round(bestP99 ?? 0)} ms`;
  } else if (bestP99 === null && e2eMs.p99 !== null && e2eMs.p99 > 5_000) {
    sustainable = false;
    reason = `e2e p99 ${Math.round(e2eMs.p99)} ms`;
  }
  const result: StepResult = {
    targetRate: rate,
    seconds: stepMs / 1000,
    sent: records.length,
    sentPerSec: round(sentPerSec, 1) ?? 0,
    created,
    errors,
    errorKinds,
    createMs: distribution(createLatencies),
    e2eMs,
    completedPerSec: round(completedPerSec, 1) ?? 0,
    completionRatio: round(completionRatio, 3) ?? 0,
    completedTotal,
    notCompleted: notCompletedIds.length,
    notCompletedIds: notCompletedIds.slice(0, 20),
    drainSec: round(drainSec, 1) ?? 0,
    sendLagMs: distribution(sendLag),
    resources,
    cpuMsPerTask: Object.fromEntries(
      Object.entries(whole.procs).map(([name, usage]) => [
        name,
        round((usage.cpuSec * 1000) / Math.max(1, completedTotal), 1) ?? 0,
      ]),
    ),
    sustainable,
    reason,
  };
  return { result, pendingIds: notCompletedIds, finishedIds, e2eSamplesMs: e2e };
}
