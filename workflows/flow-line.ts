/**
 * A flow-control key's line of tasks waiting for a slot, as its limiter (flow-limiter.ts) keeps it:
 * ordered by priority, then creation, then arrival; its head staged while every slot is taken (the
 * staged attempts park in a worker, ready for a slot handed over there). Deterministic.
 */
import type { FlowLimits, FlowWaiter } from './flow-control-contract.js';

/** Lower priority first; within a priority, the earlier created; then the earlier arrived. */
export function comesBefore(a: FlowWaiter, b: FlowWaiter): boolean {
  if (a.priority !== b.priority) return a.priority < b.priority;
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt;
  return a.seq < b.seq;
}

/** Inserts `waiter` into the ordered `line` at its place. */
export function insertInOrder(line: FlowWaiter[], waiter: FlowWaiter): void {
  let low = 0;
  let high = line.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (comesBefore(line[middle]!, waiter)) low = middle + 1;
    else high = middle;
  }
  line.splice(low, 0, waiter);
}

/** At most this many staged tasks per key, whatever its parallelism. */
const MAX_STAGED = 100;

/**
 * Staged tasks per slot. The staged line must outlast the time a new one takes to park (notice →
 * task workflow task → activity dispatch, 0.3–0.5 s on two loaded cores) at the key's drain rate.
 * Measured (`SAMPLES=5 node dist/test/flow-control-measure.js`: parallelism 20, 200 ms callbacks,
 * dev server): 1 per slot 55.5/s (the line ran dry: 58 grants went through the limiter), 3 per
 * slot 78.3/s, 5 per slot 83.6/s (93 % of the engine's drain).
 */
const STAGED_PER_SLOT = 5;

/**
 * How many may be staged now: none while paused, with a rate (each start must enter the window at
 * the limiter), without a parallelism, or while more hold a slot than it allows (limits lowered: a
 * hand-over would keep the excess).
 */
export function stageCapacity(limits: FlowLimits, paused: boolean, holders: number): number {
  const { parallelism } = limits;
  if (paused || limits.rate !== null || parallelism === null || holders > parallelism) return 0;
  return Math.min(STAGED_PER_SLOT * parallelism, MAX_STAGED);
}

/**
 * Keeps the head of the line staged while every slot is taken (`saturated`): unstages the excess
 * (the last first) and the last staged task a better waiter comes before, and stages the next
 * waiters. Every staged task comes before every waiter. Answers whose part changed, last word
 * per task.
 */
export function restage(
  staged: FlowWaiter[],
  waiters: FlowWaiter[],
  capacity: number,
  saturated: boolean,
): Map<string, { waiter: FlowWaiter; staged: boolean }> {
  const changed = new Map<string, { waiter: FlowWaiter; staged: boolean }>();
  const unstageLast = (): void => {
    const last = staged.pop()!;
    insertInOrder(waiters, last);
    changed.set(last.taskId, { waiter: last, staged: false });
  };
  while (staged.length > capacity) unstageLast();
  while (capacity > 0 && staged.length === capacity && waiters.length > 0 && comesBefore(waiters[0]!, staged.at(-1)!)) {
    unstageLast();
    const better = waiters.shift()!;
    insertInOrder(staged, better);
    changed.set(better.taskId, { waiter: better, staged: true });
  }
  while (saturated && staged.length < capacity && waiters.length > 0) {
    const next = waiters.shift()!;
    staged.push(next);
    changed.set(next.taskId, { waiter: next, staged: true });
  }
  return changed;
}
