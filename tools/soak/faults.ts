/**
 * Fault injection and its log: worker restarts (SIGTERM and SIGKILL in turn) and faults of the
 * Temporal engine — kill -9 of the dev server, or on a cluster kill -9 of history or frontend and a
 * PostgreSQL restart (engine.ts) — on a seeded schedule, each one recorded so that a task that ends
 * wrong can be lined up with the faults around it.
 */
import { sleep } from '../shared/timing.js';
import { log, T0 } from './run-log.js';
import type { Running } from './setup.js';
import { isStopping } from './stop-signal.js';

export interface FaultEvent {
  at: string;
  elapsedSec: number;
  fault:
    | 'worker-sigterm'
    | 'worker-sigkill'
    | 'server-kill'
    | 'history-kill'
    | 'frontend-kill'
    | 'postgres-restart'
    | 'worker-died'
    | 'cluster-died';
  detail: string;
}

export const faults: FaultEvent[] = [];

export function recordFault(fault: FaultEvent['fault'], detail: string): void {
  faults.push({ at: new Date().toISOString(), elapsedSec: Math.round((Date.now() - T0) / 100) / 10, fault, detail });
  log(`FAULT ${fault}: ${detail}`);
}

/**
 * Every ~45–60 s one worker restarts (SIGTERM and SIGKILL in turn), the first no later than 40 %
 * into the run; the engine's faults come on the engine's own schedule (every ~2–3 min for the dev
 * server, ~40–55 s for a cluster), so that a short run (`--minutes 1`) exercises both.
 */
export async function injectFaults(run: Running, untilMs: number): Promise<void> {
  const rng = run.faultRng;
  const engine = run.server;
  const durationMs = untilMs - Date.now();
  let nextWorkerAt = Date.now() + Math.min(rng.between(45_000, 60_000), durationMs * 0.4);
  let nextServerAt = Date.now() + engine.firstFaultAfter(rng, durationMs);
  let workerFaults = 0;
  for (let round = 0; round < 10_000 && !isStopping(); round++) {
    const dueAt = Math.min(nextWorkerAt, nextServerAt);
    if (dueAt >= untilMs) return;
    await sleep(Math.min(dueAt - Date.now(), 1_000));
    if (Date.now() < dueAt || isStopping()) continue;
    if (dueAt === nextServerAt) {
      await engine.injectFault(rng);
      nextServerAt = Date.now() + engine.nextFaultAfter(rng, durationMs);
      // Let the system settle a little before the next worker fault.
      nextWorkerAt = Math.max(nextWorkerAt, Date.now() + 10_000);
    } else {
      await run.workers.restartOne(workerFaults++ % 2 === 0 ? 'SIGTERM' : 'SIGKILL');
      nextWorkerAt = Date.now() + rng.between(45_000, 60_000);
    }
  }
}
