/**
 * One long-lived workflow per flow-control key: it holds the key's limits, pause, the tasks
 * holding a slot and those waiting for one, and grants slots by signal. Temporal has no per-key
 * concurrency primitive; a single workflow per key is one: its history serializes every request,
 * on any worker and any API process, and its state survives restarts of every process, the
 * Temporal server's included. Deterministic: no I/O, no clocks but Temporal's.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import {
  FLOW_MEMO_KEY,
  acquireSlotSignal,
  configureFlowSignal,
  flowKeyQuery,
  releaseSlotSignal,
  type FlowHolder,
  type FlowKeyView,
  type FlowLimiterInput,
  type FlowWaiter,
  type SlotRequest,
} from './flow-control-contract.js';

type Activities = ReturnType<typeof createActivities>;

/**
 * The rate window as the limiter counts it is this much longer than `period`: a start is counted
 * when its grant has reached the task, and the call leaves its worker some time after that, not
 * always equally soon (the task's workflow task, the activity's dispatch). With 100 ms, four
 * starts reached the callee within 994 ms at `rate` 3 per second on the loaded PostgreSQL cluster
 * of CI: the spread was above 100 ms there. The exact cure is to count the call's own start as the
 * worker reports it; until then the margin must exceed the spread.
 */
export const RATE_WINDOW_MARGIN_MS = 300;

/** Continue-as-new well before Temporal's own warning, keeping each run's replay short. */
const MAX_HISTORY_EVENTS = 10_000;

/** Lower priority first; within a priority, the earlier created; then the earlier arrived. */
function comesBefore(a: FlowWaiter, b: FlowWaiter): boolean {
  if (a.priority !== b.priority) return a.priority < b.priority;
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt;
  return a.seq < b.seq;
}

export async function flowLimiterWorkflow(input: FlowLimiterInput): Promise<void> {
  let limits = input.limits;
  let paused = input.paused;
  const holders = new Map<string, FlowHolder>(Object.entries(input.holders ?? {}));
  const waiters: FlowWaiter[] = [...(input.waiters ?? [])];
  let starts: number[] = [...(input.starts ?? [])];
  let seq = input.seq ?? 0;
  let changed = true;
  let grantsInFlight = 0;
  let lastHolderCheck = Date.now();

  const view = (): FlowKeyView => ({
    key: input.key,
    parallelism: limits.parallelism,
    rate: limits.rate,
    period: limits.period,
    paused,
    inFlight: holders.size,
    waiting: waiters.length,
  });

  setHandler(flowKeyQuery, view);

  const acquire = (request: SlotRequest): void => {
    // A task sends its requests in order and each after releasing the one before (it awaits the
    // signals), so a newer request replaces whatever the task still had here; a repeat of one
    // (the API's and the task's own for a first attempt) keeps its place.
    const held = holders.get(request.taskId);
    if (held !== undefined && held.request >= request.request) return;
    const waiting = waiters.find((w) => w.taskId === request.taskId);
    if (waiting !== undefined && waiting.request >= request.request) return;
    holders.delete(request.taskId);
    removeWaiter(request.taskId);
    insertWaiter({ ...request, seq: ++seq });
    changed = true;
  };

  setHandler(configureFlowSignal, (configuration) => {
    const before = JSON.stringify([limits, paused]);
    if (configuration.limits !== undefined) limits = configuration.limits;
    if (configuration.paused !== undefined) paused = configuration.paused;
    if (configuration.acquire !== undefined) acquire(configuration.acquire);
    // Only on a real change (creates repeat the same limits): each upsert is a history event.
    if (JSON.stringify([limits, paused]) !== before) upsertMemo({ [FLOW_MEMO_KEY]: view() });
    changed = true;
  });

  setHandler(acquireSlotSignal, acquire);

  setHandler(releaseSlotSignal, (release) => {
    const held = holders.get(release.taskId);
    if (held !== undefined && held.request <= release.request) holders.delete(release.taskId);
    const index = waiters.findIndex((w) => w.taskId === release.taskId);
    if (index >= 0 && waiters[index]!.request <= release.request) waiters.splice(index, 1);
    changed = true;
  });

  /** Waiters stay sorted by (priority, creation time, arrival): the head is served first. */
  function insertWaiter(waiter: FlowWaiter): void {
    let low = 0;
    let high = waiters.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (comesBefore(waiters[middle]!, waiter)) low = middle + 1;
      else high = middle;
    }
    waiters.splice(low, 0, waiter);
  }

  function removeWaiter(taskId: string): void {
    const index = waiters.findIndex((w) => w.taskId === taskId);
    if (index >= 0) waiters.splice(index, 1);
  }

  const windowMs = (): number => limits.period * 1000 + RATE_WINDOW_MARGIN_MS;
  const slotFree = (): boolean => limits.parallelism === null || holders.size < limits.parallelism;
  const rateFree = (): boolean => limits.rate === null || starts.length < limits.rate;

  function grantWhatFits(): void {
    const now = Date.now();
    starts = starts.filter((start) => start > now - windowMs());
    const batch: FlowWaiter[] = [];
    while (!paused && waiters.length > 0 && slotFree() && rateFree()) {
      const waiter = waiters.shift()!;
      holders.set(waiter.taskId, { request: waiter.request, grantedAt: now });
      if (limits.rate !== null) starts.push(now);
      batch.push(waiter);
    }
    if (batch.length > 0) grant(batch, now);
  }

  /**
   * Grants go out through an activity that signals the tasks from the worker's client: a
   * signal a workflow sends goes through the server's transfer queue, which on a busy server
   * took up to half a second per hop, where a client's signal takes milliseconds.
   */
  function grant(batch: FlowWaiter[], grantedAt: number): void {
    grantsInFlight++;
    // An activity, not a local one: a local activity holds the limiter's workflow task open until
    // it ends (measured: 107 ms per workflow task, the limiter's bottleneck at parallelism 20),
    // while an activity's schedule ends the workflow task at once, and eager dispatch hands it to
    // this worker in the same round trip.
    const { deliverSlotGrants } = proxyActivities<Activities>({
      startToCloseTimeout: 30_000,
      retry: { maximumAttempts: 3, initialInterval: 100 },
    });
    void deliverSlotGrants({ grants: batch.map(({ taskId, request }) => ({ taskId, request })) })
      .then((gone) => {
        // Their workflows are gone (ended, terminated): those slots were never taken.
        for (const { taskId, request } of gone) if (holders.get(taskId)?.request === request) holders.delete(taskId);
        // The rate counts the start from when the task has its grant, which on a busy server
        // can be well after the grant was decided: counting from the decision would let the
        // next window open early.
        const delivered = Date.now();
        for (let i = 0; i < batch.length; i++) {
          const index = starts.indexOf(grantedAt);
          if (index < 0) break;
          starts.splice(index, 1);
          starts.push(delivered);
        }
        starts.sort((x, y) => x - y);
      })
      .catch(() => {
        // Not delivered (Temporal failing for seconds): back in line, in their places.
        for (const waiter of batch) {
          if (holders.get(waiter.taskId)?.request !== waiter.request) continue;
          holders.delete(waiter.taskId);
          insertWaiter(waiter);
        }
      })
      .finally(() => {
        grantsInFlight--;
        changed = true;
      });
  }

  /**
   * A task workflow releases its slot in a `finally`, also when its attempt's worker died (the
   * heartbeat timeout ends the attempt). Only a workflow stopped from outside (terminated, reset)
   * never releases: while waiters find every slot taken, the holders are checked now and then
   * and the closed ones dropped, so no slot leaks for ever.
   */
  const saturatedWithWaiters = (): boolean => !paused && waiters.length > 0 && !slotFree();
  async function dropClosedHolders(): Promise<void> {
    lastHolderCheck = Date.now();
    const { closedFlowHolders } = proxyActivities<Activities>({
      startToCloseTimeout: 30_000,
      retry: { maximumAttempts: 2 },
    });
    const checked = new Map(holders);
    const closed = await closedFlowHolders({ taskIds: [...checked.keys()] }).catch(() => [] as string[]);
    for (const taskId of closed) {
      if (holders.get(taskId)?.request === checked.get(taskId)?.request) holders.delete(taskId);
    }
  }

  /** When something changes without a signal: a start leaves the rate window, a holder check is due. */
  function nextWakeMs(): number | undefined {
    const now = Date.now();
    const wakes: number[] = [];
    if (!paused && waiters.length > 0 && slotFree() && !rateFree() && starts[0] !== undefined) {
      wakes.push(starts[0] + windowMs() - now + 1);
    }
    if (saturatedWithWaiters()) wakes.push(lastHolderCheck + input.holderCheckIntervalMs - now);
    return wakes.length > 0 ? Math.max(1, Math.min(...wakes)) : undefined;
  }

  const shouldContinueAsNew = (): boolean =>
    workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > (input.maxHistoryEvents ?? MAX_HISTORY_EVENTS);

  for (;;) {
    grantWhatFits();
    if (shouldContinueAsNew()) {
      // Grants are awaited first: their outcome (a task that is gone) must not be lost.
      await condition(() => grantsInFlight === 0 && allHandlersFinished());
      grantWhatFits();
      if (grantsInFlight === 0) {
        await continueAsNew<typeof flowLimiterWorkflow>({
          ...input,
          limits,
          paused,
          holders: Object.fromEntries(holders),
          waiters,
          starts,
          seq,
        });
      }
      continue;
    }
    changed = false;
    const wake = nextWakeMs();
    if (wake === undefined) await condition(() => changed);
    else await condition(() => changed, wake);
    if (saturatedWithWaiters() && Date.now() - lastHolderCheck >= input.holderCheckIntervalMs) {
      await dropClosedHolders();
    }
  }
}
