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
  log,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import {
  FLOW_MEMO_KEY,
  UNSTARTED_HOLDER_GRACE_MS,
  acquireSlotSignal,
  configureFlowSignal,
  flowKeyQuery,
  handOverSlotSignal,
  releaseSlotSignal,
  slotStartedSignal,
  tryAcquireSlotUpdate,
  tryAcquireSlotsUpdate,
  type FirstSlotAnswer,
  type FirstSlotRequest,
  type FlowConfiguration,
  type FlowLimiterInput,
  type FlowWaiter,
  type SlotRequest,
  type StageNotice,
} from './flow-control-contract.js';
import { FlowKeyState } from './flow-key-state.js';

type Activities = ReturnType<typeof createActivities>;

/**
 * A limiter run that began with this marker counts each attempt's start from when its worker
 * reports the call beginning (or the slot coming back), and re-sends a grant a task asks for again.
 * Runs begun before it keep counting grants, as their histories recorded, until their next
 * continue-as-new; asked once, at the run's start, so a run never mixes the two.
 */
export const REPORTED_STARTS = 'flow-limiter-reported-starts';

/**
 * A limiter run that began with this marker keeps a wake-up timer while it still fires in time,
 * instead of starting one for every wait and cancelling it when a signal comes first (two events
 * and a timer task each time: a third of the limiter's events while tasks queue for a busy key).
 */
export const KEPT_WAKE_TIMER = 'flow-limiter-kept-wake-timer';

/**
 * A limiter run that began with this marker stages waiters of a saturated key without a rate: up
 * to five per slot (the head of the line, flow-line.ts) are told so, their attempts park in a worker,
 * and an attempt of the key that ends hands its slot to a parked one there (`handOverSlot`),
 * without this workflow or the task's in between. Asked once, at the run's start.
 */
export const STAGED_HAND_OVER = 'flow-limiter-staged-hand-over';

/** A limiter counts every hand-over a `handOverSlot` signal carries `also` after this marker. */
export const HAND_OVERS_ALSO = 'flow-limiter-hand-overs-also';

/** Continue-as-new well before Temporal's own warning, keeping each run's replay short. */
const MAX_HISTORY_EVENTS = 10_000;

export async function flowLimiterWorkflow(input: FlowLimiterInput): Promise<void> {
  const reportedStarts = patched(REPORTED_STARTS);
  const keptWakeTimer = patched(KEPT_WAKE_TIMER);
  const stagedHandOver = patched(STAGED_HAND_OVER);
  /** The wake-up timer set last, by workflow time it fires at. */
  let wakeTimer: { at: number; fired: boolean } | undefined;
  const state = new FlowKeyState(input, { reportedStarts, stagedHandOver });
  let changed = true;
  let grantsInFlight = 0;
  let lastHolderCheck = Date.now();

  // Everything the handlers use is defined before the first setHandler: a signal or update that
  // came with the start (Update-with-Start) is handled as soon as its handler is set.
  setHandler(flowKeyQuery, () => state.view(input.key));

  function acquire(request: SlotRequest): void {
    const answer = state.acquire(request);
    if (answer === 'again') grant([{ ...request, seq: 0 }], { again: true });
    if (answer === 'queued') changed = true;
  }

  function configure(configuration: FlowConfiguration): void {
    const before = JSON.stringify([state.limits, state.paused]);
    if (configuration.limits !== undefined) state.limits = configuration.limits;
    if (configuration.paused !== undefined) state.paused = configuration.paused;
    if (configuration.acquire !== undefined) acquire(configuration.acquire);
    // Only on a real change (creates repeat the same limits): each upsert is a history event.
    if (JSON.stringify([state.limits, state.paused]) !== before) upsertMemo({ [FLOW_MEMO_KEY]: state.view(input.key) });
    changed = true;
  }

  setHandler(configureFlowSignal, configure);

  setHandler(acquireSlotSignal, acquire);

  /**
   * The API's ask for a due task's first slot, before it starts the task: granted only if it is
   * free now and nobody waits (never ahead of a waiter); otherwise nothing is recorded, and the
   * task asks for itself when it runs. The grant travels in the update's answer, so the task
   * calls as soon as it starts.
   */
  function tryFirstSlot({ acquire: request, limits: newLimits }: FirstSlotRequest): FirstSlotAnswer {
    configure(newLimits !== undefined ? { limits: newLimits } : {});
    if (!state.tryFirstSlot(request)) return { granted: false, reportStart: false };
    return { granted: true, reportStart: state.reportsStart() };
  }

  setHandler(tryAcquireSlotUpdate, tryFirstSlot);
  setHandler(tryAcquireSlotsUpdate, ({ asks }) => asks.map(tryFirstSlot));

  setHandler(slotStartedSignal, ({ taskId, request }) => {
    state.stampStart(taskId, request);
    changed = true;
  });

  setHandler(releaseSlotSignal, (release) => {
    state.release(release);
    changed = true;
  });

  setHandler(handOverSlotSignal, ({ also, ...handOver }) => {
    // The hand-overs a signal carries `also` count after a marker: during a rolling upgrade an
    // older worker may have run this workflow task and counted the first only, and its history
    // must replay on a newer one as it ran.
    state.handOverAll(also !== undefined && patched(HAND_OVERS_ALSO) ? { ...handOver, also } : handOver);
    changed = true;
  });

  function grantWhatFits(): void {
    const batch = state.takeWhatFits();
    if (batch.length > 0) grant(batch, { again: false });
    if (!stagedHandOver) return;
    const notices = state.restage();
    if (notices.length > 0) notify(notices);
  }

  /**
   * Stage notices go out like grants, through the grant activity. A staged task whose workflow is
   * gone leaves the line; a notice not delivered is left: the task waits as before, and a parked
   * attempt that was to stand down is handed a slot at worst, which the hand-over counts.
   */
  function notify(notices: StageNotice[]): void {
    grantsInFlight++;
    const { deliverSlotGrants } = proxyActivities<Activities>({
      startToCloseTimeout: 30_000,
      retry: { maximumAttempts: 3, initialInterval: 100 },
    });
    void deliverSlotGrants({ grants: [], notices, key: input.key })
      .then((gone) => {
        for (const { taskId, request } of gone) state.removeGone(taskId, request);
      })
      .catch(() => log.warn('flow control: stage notices not delivered', { taskIds: notices.map((n) => n.taskId) }))
      .finally(() => {
        grantsInFlight--;
        changed = true;
      });
  }

  /**
   * Grants go out through an activity that signals the tasks from the worker's client: a
   * signal a workflow sends goes through the server's transfer queue, which on a busy server
   * took up to half a second per hop, where a client's signal takes milliseconds. `again`: a
   * grant the task holds already and asked for once more; it stays held whatever the delivery.
   */
  function grant(batch: FlowWaiter[], { again }: { again: boolean }): void {
    grantsInFlight++;
    const grantedAt = Date.now();
    const reportStart = state.reportsStart();
    // An activity, not a local one: a local activity holds the limiter's workflow task open until
    // it ends (measured: 107 ms per workflow task, the limiter's bottleneck at parallelism 20),
    // while an activity's schedule ends the workflow task at once, and eager dispatch hands it to
    // this worker in the same round trip.
    const { deliverSlotGrants } = proxyActivities<Activities>({
      startToCloseTimeout: 30_000,
      retry: { maximumAttempts: 3, initialInterval: 100 },
    });
    const grants = batch.map(({ taskId, request }) => ({ taskId, request, ...(reportStart ? { reportStart } : {}) }));
    void deliverSlotGrants({ grants })
      .then((gone) => {
        if (again) return;
        // Their workflows are gone (ended, terminated): those slots were never taken, no call began.
        for (const { taskId, request } of gone) state.ungrant(taskId, request);
        // Counting grants: the start counts from when the task has its grant, which on a busy
        // server can be well after the grant was decided.
        if (!reportedStarts) state.stampDelivered(batch, grantedAt);
      })
      .catch(() => {
        if (again) {
          log.warn('flow control: a grant asked for again was not delivered', { taskIds: batch.map((w) => w.taskId) });
          return;
        }
        // Not delivered (Temporal failing for seconds): back in line, in their places; no call began.
        for (const waiter of batch) state.requeue(waiter);
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
  async function dropClosedHolders(): Promise<void> {
    lastHolderCheck = Date.now();
    const { closedFlowHolders } = proxyActivities<Activities>({
      startToCloseTimeout: 30_000,
      retry: { maximumAttempts: 2 },
    });
    const checked = new Map(state.holders);
    const recent = lastHolderCheck - (input.unstartedHolderGraceMs ?? UNSTARTED_HOLDER_GRACE_MS);
    const recentlyGranted = [...checked].filter(([, held]) => held.grantedAt > recent).map(([taskId]) => taskId);
    const closed = await closedFlowHolders({ taskIds: [...checked.keys()], recentlyGranted }).catch(() => [] as string[]);
    for (const taskId of closed) {
      if (state.holders.get(taskId)?.request === checked.get(taskId)?.request) state.dropHolder(taskId);
    }
  }

  /** When something changes without a signal: a start leaves the rate window, a holder check is due. */
  function nextWakeMs(): number | undefined {
    const wakes: number[] = [];
    const rateWake = state.rateWakeMs();
    if (rateWake !== undefined) wakes.push(rateWake);
    if (state.saturatedWithWaiters()) wakes.push(lastHolderCheck + input.holderCheckIntervalMs - Date.now());
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
      if (grantsInFlight === 0) await continueAsNew<typeof flowLimiterWorkflow>({ ...input, ...state.carried() });
      continue;
    }
    changed = false;
    const wake = nextWakeMs();
    if (wake === undefined) await condition(() => changed);
    else if (!keptWakeTimer) await condition(() => changed, wake);
    else {
      const at = Date.now() + wake;
      // A timer that fires no later than needed is kept (waking early only means looking again);
      // one that fires too late is left to fire, and a sooner one set.
      if (wakeTimer === undefined || wakeTimer.fired || wakeTimer.at > at) {
        const timer = { at, fired: false };
        wakeTimer = timer;
        void sleep(wake).then(() => {
          timer.fired = true;
          changed = true;
        });
      }
      await condition(() => changed);
    }
    if (state.saturatedWithWaiters() && Date.now() - lastHolderCheck >= input.holderCheckIntervalMs) {
      await dropClosedHolders();
    }
  }
}
