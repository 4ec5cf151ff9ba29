/**
 * The capacity comparison's closed loop (capacity.ts): a target kept at its limit by a fixed
 * number of tasks under way, its completions, latencies, CPU and the server's requests counted
 * over the run's last three quarters.
 */
import { sleep } from '../shared/timing.js';
import type { CapacityRun } from './capacity-report.js';
import { log, now } from './clock.js';
import { distribution, round } from './distribution.js';
import type { Sampler } from './process-sampler.js';
import { rpcCosts, scrapeRequests, type RequestCounts } from './server-metrics.js';
import type { Target } from './targets/target.js';

/** Longest wait for a run's tasks under way to finish before the engine serves the next run. */
const DRAIN_MAX_MS = 60_000;

/**
 * Keeps `outstanding` tasks under way for `seconds`: each webhook that arrives starts the next
 * task. The first quarter fills the pipeline; completions, latencies, CPU and the server's RPCs
 * (its metrics at `metricsUrls`, when it has them) count over the rest. With `drain`, it then
 * waits (up to DRAIN_MAX_MS) for the tasks still under way to finish, counting none of them.
 */
export async function closedLoop(
  target: Target,
  sampler: Sampler,
  metricsUrls: string[],
  { outstanding, seconds, tag, drain }: { outstanding: number; seconds: number; tag: string; drain: boolean },
): Promise<Omit<CapacityRun, 'round' | 'target' | 'history'> & { finishedIds: string[] }> {
  const sentAt = new Map<string, number>();
  const finishedIds: string[] = [];
  let seq = 0;
  let creating = 0;
  let errors = 0;
  let stopped = false;
  const launch = (): void => {
    creating++;
    const at = now();
    void target.create(seq++, tag).then((result) => {
      creating--;
      if (result.ok && result.id !== undefined) sentAt.set(result.id, at);
      else errors++;
    });
  };
  const t0 = now();
  const measureFrom = t0 + (seconds * 1000) / 4;
  const end = t0 + seconds * 1000;
  let window: ReturnType<Sampler['open']> | undefined;
  let requestsAtStart: RequestCounts | undefined;
  const latencies: number[] = [];
  // Every 10 s a line with that interval's completions and CPU per task: a steady state looks flat.
  let interval = { from: t0, done: 0, usage: sampler.open() };
  let completed = 0;
  while (!stopped) {
    const t = now();
    if (window === undefined && t >= measureFrom) {
      window = sampler.open();
      requestsAtStart = await scrapeRequests(metricsUrls);
    }
    if (t >= end) stopped = true;
    if (t - interval.from >= 10_000 || stopped) {
      const usage = interval.usage.close();
      const perTask = Object.entries(usage.procs)
        .map(([name, proc]) => `${name} ${((proc.cpuSec * 1000) / Math.max(1, interval.done)).toFixed(1)}`)
        .join(', ');
      log(
        `  ${tag} +${Math.round((t - t0) / 1000)} s: ${(interval.done / ((t - interval.from) / 1000)).toFixed(1)}/s; ` +
          `CPU ms/task ${perTask}; steal ${usage.stealCpuSec} s`,
      );
      interval = { from: t, done: 0, usage: sampler.open() };
    }
    for (const [id, at] of sentAt) {
      const doneAt = target.completedAt(id);
      if (doneAt === undefined) continue;
      sentAt.delete(id);
      interval.done++;
      if (doneAt >= measureFrom && doneAt < end) {
        completed++;
        latencies.push(doneAt - at);
        finishedIds.push(id);
      }
    }
    // A failed create is replaced too: the loop keeps its concurrency, and the errors are reported.
    for (let i = sentAt.size + creating; !stopped && i < outstanding; i++) launch();
    target.assertAlive();
    await sleep(10);
  }
  interval.usage.close();
  const usage = window!.close();
  const requestsAtEnd = requestsAtStart !== undefined ? await scrapeRequests(metricsUrls) : undefined;
  if (drain) {
    const drainUntil = now() + DRAIN_MAX_MS;
    while ((sentAt.size > 0 || creating > 0) && now() < drainUntil) {
      for (const id of sentAt.keys()) if (target.completedAt(id) !== undefined) sentAt.delete(id);
      await sleep(50);
    }
    log(
      sentAt.size + creating === 0
        ? `  ${tag}: drained`
        : `  ${tag}: ${sentAt.size + creating} tasks still under way after ${DRAIN_MAX_MS / 1000} s; the next run starts beside them`,
    );
  }
  const measuredSec = (end - measureFrom) / 1000;
  return {
    completedPerSec: round(completed / measuredSec, 1) ?? 0,
    completed,
    errors,
    e2eMs: distribution(latencies),
    cpuMsPerTask: Object.fromEntries(
      Object.entries(usage.procs).map(([name, proc]) => [name, round((proc.cpuSec * 1000) / Math.max(1, completed), 1) ?? 0]),
    ),
    machineBusyCores: round(usage.machineBusyCpuSec / Math.max(0.001, usage.seconds), 2) ?? 0,
    stealCores: round(usage.stealCpuSec / Math.max(0.001, usage.seconds), 2) ?? 0,
    // Completions stand for tasks: in a steady closed loop as many start as end.
    rpc:
      requestsAtStart !== undefined && requestsAtEnd !== undefined
        ? rpcCosts(requestsAtStart, requestsAtEnd, completed, measuredSec)
        : null,
    finishedIds,
  };
}
