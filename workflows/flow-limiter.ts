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
  type FlowHolder,
  type FlowKeyView,
  type FlowLimiterInput,
  type FlowWaiter,
  type SlotRequest,
  type StageNotice,
  type StartRecord,
} from './flow-control-contract.js';
import { insertInOrder, restage, stageCapacity } from './flow-line.js';

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
 * to `parallelism` of them (the head of the line) are told so, their attempts park in a worker,
 * and an attempt of the key that ends hands its slot to a parked one there (`handOverSlot`),
 * without this workflow or the task's in between. Asked once, at the run's start.
 */
export const STAGED_HAND_OVER = 'flow-limiter-staged-hand-over';

/**
 * The rate window as the limiter counts it is this much longer than `period`. With reported
 * starts, the limiter stamps a start no earlier than the server took the worker's report, which
 * the worker sends as it begins the call; what is left is the spread of the calls' own way to
 * the callee (connection, the callee's accept). Counting grants (runs before reported starts),
 * the spread also held the task's workflow task and the activity's dispatch: with 100 ms, four
 * starts of a 3-per-second key reached the callee within 994 ms on the loaded CI cluster.
 */
const RATE_WINDOW_MARGIN_MS = 100;
const GRANT_COUNTED_MARGIN_MS = 300;

/** Continue-as-new well before Temporal's own warning, keeping each run's replay short. */
const MAX_HISTORY_EVENTS = 10_000;

export async function flowLimiterWorkflow(input: FlowLimiterInput): Promise<void> {
  const reportedStarts = patched(REPORTED_STARTS);
  const keptWakeTimer = patched(KEPT_WAKE_TIMER);
  const stagedHandOver = patched(STAGED_HAND_OVER);
  /** The wake-up timer set last, by workflow time it fires at. */
  let wakeTimer: { at: number; fired: boolean } | undefined;
  let limits = input.limits;
  let paused = input.paused;
  const holders = new Map<string, FlowHolder>(Object.entries(input.holders ?? {}));
  const waiters: FlowWaiter[] = [...(input.waiters ?? [])];
  /** Waiters told they are staged, in order; every one of them comes before every waiter. */
  const staged: FlowWaiter[] = [...(input.staged ?? [])];
  let starts: StartRecord[] = (input.starts ?? []).map((start) =>
    typeof start === 'number' ? { taskId: '', request: 0, at: start } : start,
  );
  let seq = input.seq ?? 0;
  let changed = true;
  let grantsInFlight = 0;
  let lastHolderCheck = Date.now();

  // Everything the handlers use is defined before the first setHandler: a signal or update that
  // came with the start (Update-with-Start) is handled as soon as its handler is set.
  const windowMs = (): number => limits.period * 1000 + (reportedStarts ? RATE_WINDOW_MARGIN_MS : GRANT_COUNTED_MARGIN_MS);
  const slotFree = (): boolean => limits.parallelism === null || holders.size < limits.parallelism;
  /** A start not stamped yet counts as happening now: it never leaves the window on its own. */
  const pruneStarts = (): void => {
    const since = Date.now() - windowMs();
    starts = starts.filter((start) => start.at === undefined || start.at > since);
  };
  const rateFree = (): boolean => limits.rate === null || starts.length < limits.rate;
  const reportsStart = (): boolean => reportedStarts && limits.rate !== null;

  const view = (): FlowKeyView => ({
    key: input.key,
    parallelism: limits.parallelism,
    rate: limits.rate,
    period: limits.period,
    paused,
    inFlight: holders.size,
    waiting: waiters.length + staged.length,
    ...(stagedHandOver ? { staged: staged.length } : {}),
  });

  setHandler(flowKeyQuery, view);

  /**
   * The attempt's call has begun, or is over: its start counts from now. Never earlier than the
   * call began: the worker reports it as it begins the call, and a slot comes back after its call.
   */
  function stampStart(taskId: string, request: number): void {
    const start = starts.find((s) => s.taskId === taskId && s.request === request && s.at === undefined);
    if (start !== undefined) start.at = Date.now();
  }

  /** The slot is free again; its start (if it had one) keeps counting in the rate window. */
  function dropHolder(taskId: string): void {
    const held = holders.get(taskId);
    if (held === undefined) return;
    holders.delete(taskId);
    stampStart(taskId, held.request);
  }

  const acquire = (request: SlotRequest): void => {
    // A task sends its requests in order and each after releasing the one before (it awaits the
    // signals), so a newer request replaces whatever the task still had here; a repeat of one
    // keeps its place.
    const held = holders.get(request.taskId);
    if (held !== undefined && held.request >= request.request) {
      // The task asks for a slot it holds: its grant did not reach it (the API was granted the
      // first slot but gave up waiting for the answer, and started the task without it).
      if (reportedStarts && held.request === request.request) grant([{ ...request, seq: 0 }], { again: true });
      return;
    }
    const waiting = waiters.find((w) => w.taskId === request.taskId) ?? staged.find((w) => w.taskId === request.taskId);
    if (waiting !== undefined && waiting.request >= request.request) return;
    dropHolder(request.taskId);
    removeWaiter(request.taskId);
    removeStaged(request.taskId);
    insertWaiter({ ...request, seq: ++seq });
    changed = true;
  };

  function configure(configuration: FlowConfiguration): void {
    const before = JSON.stringify([limits, paused]);
    if (configuration.limits !== undefined) limits = configuration.limits;
    if (configuration.paused !== undefined) paused = configuration.paused;
    if (configuration.acquire !== undefined) acquire(configuration.acquire);
    // Only on a real change (creates repeat the same limits): each upsert is a history event.
    if (JSON.stringify([limits, paused]) !== before) upsertMemo({ [FLOW_MEMO_KEY]: view() });
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
    const inLine = (w: FlowWaiter): boolean => w.taskId === request.taskId;
    const known = holders.has(request.taskId) || waiters.some(inLine) || staged.some(inLine);
    pruneStarts();
    if (known || paused || waiters.length + staged.length > 0 || !slotFree() || !rateFree()) {
      return { granted: false, reportStart: false };
    }
    take(request.taskId, request.request);
    return { granted: true, reportStart: reportsStart() };
  }

  setHandler(tryAcquireSlotUpdate, tryFirstSlot);
  setHandler(tryAcquireSlotsUpdate, ({ asks }) => asks.map(tryFirstSlot));

  setHandler(slotStartedSignal, ({ taskId, request }) => {
    stampStart(taskId, request);
    changed = true;
  });

  setHandler(releaseSlotSignal, (release) => {
    const held = holders.get(release.taskId);
    if (held !== undefined && held.request <= release.request) dropHolder(release.taskId);
    const index = waiters.findIndex((w) => w.taskId === release.taskId);
    if (index >= 0 && waiters[index]!.request <= release.request) waiters.splice(index, 1);
    const stagedIndex = staged.findIndex((w) => w.taskId === release.taskId);
    if (stagedIndex >= 0 && staged[stagedIndex]!.request <= release.request) staged.splice(stagedIndex, 1);
    changed = true;
  });

  /**
   * A worker handed the slot of an attempt that ended to a staged attempt parked there, whose call
   * has begun: the holder changes, the count does not. A task that released its request since (a
   * cancel, after its call) is no holder; one the limiter granted meanwhile holds its slot once.
   */
  setHandler(handOverSlotSignal, ({ from, to }) => {
    const held = holders.get(from.taskId);
    if (held !== undefined && held.request <= from.request) dropHolder(from.taskId);
    const leaveLine = (slot: { taskId: string; request: number }): boolean => {
      let left = false;
      for (const line of [staged, waiters]) {
        const index = line.findIndex((w) => w.taskId === slot.taskId && w.request <= slot.request);
        if (index >= 0) {
          line.splice(index, 1);
          left = true;
        }
      }
      return left;
    };
    // Signals from two workers (or two calls) may arrive out of order: the attempt that hands its
    // slot on may have been handed it by a hand-over not received yet. Its call is over: it leaves
    // the line, and that late hand-over then finds it nowhere and counts nothing for it.
    leaveLine(from);
    if (leaveLine(to) || holders.get(to.taskId)?.request === to.request) take(to.taskId, to.request);
    changed = true;
  });

  /** Waiters stay sorted by (priority, creation time, arrival): the head is served first. */
  function insertWaiter(waiter: FlowWaiter): void {
    insertInOrder(waiters, waiter);
  }

  function removeWaiter(taskId: string): void {
    const index = waiters.findIndex((w) => w.taskId === taskId);
    if (index >= 0) waiters.splice(index, 1);
  }

  function removeStaged(taskId: string): void {
    const index = staged.findIndex((w) => w.taskId === taskId);
    if (index >= 0) staged.splice(index, 1);
  }

  /** The slot is the task's; with a rate, its start enters the window (stamped later, or now). */
  function take(taskId: string, request: number): void {
    const now = Date.now();
    holders.set(taskId, { request, grantedAt: now });
    if (limits.rate !== null) starts.push({ taskId, request, ...(reportedStarts ? {} : { at: now }) });
  }

  function grantWhatFits(): void {
    pruneStarts();
    const batch: FlowWaiter[] = [];
    // The staged come first: each comes before every waiter.
    while (!paused && staged.length + waiters.length > 0 && slotFree() && rateFree()) {
      const waiter = (staged.length > 0 ? staged : waiters).shift()!;
      take(waiter.taskId, waiter.request);
      batch.push(waiter);
    }
    if (batch.length > 0) grant(batch, { again: false });
    if (stagedHandOver) restageLine();
  }

  /** Keeps the head of the line staged (flow-line.ts) and tells each task whose part changed. */
  function restageLine(): void {
    const capacity = stageCapacity(limits, paused, holders.size);
    const changes = restage(staged, waiters, capacity, !slotFree());
    if (changes.size === 0) return;
    notify(
      [...changes.values()].map(({ waiter, staged }) => ({
        taskId: waiter.taskId,
        request: waiter.request,
        staged,
        seq: ++seq,
        priority: waiter.priority,
        createdAt: waiter.createdAt,
      })),
    );
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
        for (const { taskId, request } of gone) {
          const index = staged.findIndex((w) => w.taskId === taskId && w.request === request);
          if (index >= 0) staged.splice(index, 1);
          removeGoneWaiter(taskId, request);
        }
      })
      .catch(() => log.warn('flow control: stage notices not delivered', { taskIds: notices.map((n) => n.taskId) }))
      .finally(() => {
        grantsInFlight--;
        changed = true;
      });
  }

  function removeGoneWaiter(taskId: string, request: number): void {
    const index = waiters.findIndex((w) => w.taskId === taskId && w.request === request);
    if (index >= 0) waiters.splice(index, 1);
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
    const reportStart = reportsStart();
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
        for (const { taskId, request } of gone) {
          if (holders.get(taskId)?.request !== request) continue;
          holders.delete(taskId);
          if (reportedStarts) starts = starts.filter((start) => start.taskId !== taskId || start.request !== request);
        }
        if (reportedStarts) return;
        // Counting grants: the start counts from when the task has its grant, which on a busy
        // server can be well after the grant was decided.
        const delivered = Date.now();
        for (const { taskId, request } of batch) {
          const start = starts.find((s) => s.taskId === taskId && s.request === request && s.at === grantedAt);
          if (start !== undefined) start.at = delivered;
        }
      })
      .catch(() => {
        if (again) {
          log.warn('flow control: a grant asked for again was not delivered', { taskIds: batch.map((w) => w.taskId) });
          return;
        }
        // Not delivered (Temporal failing for seconds): back in line, in their places; no call began.
        for (const waiter of batch) {
          if (holders.get(waiter.taskId)?.request !== waiter.request) continue;
          holders.delete(waiter.taskId);
          if (reportedStarts) {
            starts = starts.filter((start) => start.taskId !== waiter.taskId || start.request !== waiter.request);
          }
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
  const saturatedWithWaiters = (): boolean => !paused && waiters.length + staged.length > 0 && !slotFree();
  async function dropClosedHolders(): Promise<void> {
    lastHolderCheck = Date.now();
    const { closedFlowHolders } = proxyActivities<Activities>({
      startToCloseTimeout: 30_000,
      retry: { maximumAttempts: 2 },
    });
    const checked = new Map(holders);
    const recent = lastHolderCheck - (input.unstartedHolderGraceMs ?? UNSTARTED_HOLDER_GRACE_MS);
    const recentlyGranted = [...checked].filter(([, held]) => held.grantedAt > recent).map(([taskId]) => taskId);
    const closed = await closedFlowHolders({ taskIds: [...checked.keys()], recentlyGranted }).catch(() => [] as string[]);
    for (const taskId of closed) {
      if (holders.get(taskId)?.request === checked.get(taskId)?.request) dropHolder(taskId);
    }
  }

  /** When something changes without a signal: a start leaves the rate window, a holder check is due. */
  function nextWakeMs(): number | undefined {
    const now = Date.now();
    const wakes: number[] = [];
    const stamped = starts.flatMap((start) => (start.at !== undefined ? [start.at] : []));
    if (!paused && waiters.length > 0 && slotFree() && !rateFree() && stamped.length > 0) {
      wakes.push(Math.min(...stamped) + windowMs() - now + 1);
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
          // Always, empty too: `...input` would otherwise carry the staged line this run began with.
          staged,
          seq,
        });
      }
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
    if (saturatedWithWaiters() && Date.now() - lastHolderCheck >= input.holderCheckIntervalMs) {
      await dropClosedHolders();
    }
  }
}
