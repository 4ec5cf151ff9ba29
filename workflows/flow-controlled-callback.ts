/**
 * The callback phase of a task with `flowControl`: before each attempt the task asks its key's
 * limiter (flow-limiter.ts) for a slot and waits for the grant, runs one attempt (one activity,
 * no retry policy: a retry must wait for a slot like a first attempt), and gives the slot back
 * when the attempt ends in any way. The workflow does the backoff the retry policy does for
 * other tasks, `Retry-After` included. Tasks without `flowControl` never come here, so their
 * histories replay unchanged.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import { awaitAcceptedCompletion, callbackRequest, type SetStatus } from './callback-calls.js';
import { attemptFromFailure, backoffMs, failureDetails, retryAfterMs, retryableAsyncFailure } from './callback-failures.js';
import {
  DEFAULT_PRIORITY,
  acquireSlotSignal,
  limiterWorkflowId,
  releaseSlotSignal,
  slotGrantedSignal,
  slotStagedSignal,
  type SlotRequest,
  type TaskFlowControl,
} from './flow-control-contract.js';
import {
  STAGED_ON_TASK_QUEUE,
  STAGED_PARK_LIMIT_MS,
  STAND_DOWN_OUTCOMES,
  STAND_DOWN_NO_ROOM,
  STAND_DOWN_PARK_LIMIT,
  stagedActivityId,
  stagedTaskQueue,
} from './staged-attempt-contract.js';
import {
  callbackActivityIdAfter,
  type CallbackOutcome,
  type CallbackRequest,
  type TaskInput,
  type TaskState,
} from './task-contract.js';

type Activities = ReturnType<typeof createActivities>;

/** Room for the activity to classify its own timeout before Temporal's start-to-close fires. */
const ATTEMPT_TIMEOUT_MARGIN_MS = 5_000;

/**
 * A task that signals its limiter after this marker does so from the worker (a local activity:
 * one marker in its history) instead of by a workflow signal (two events, a hop through the
 * server's transfer queue, and a workflow task of the task's own only to record that the signal
 * went out: one of a staged task's five). Histories from before replay as they ran.
 */
export const LIMITER_SIGNALS_FROM_WORKER = 'flow-limiter-signals-from-worker';

/**
 * A flow-controlled task that meets this marker does all its flow-control path's changes of the
 * markers before it (LIMITER_SIGNALS_FROM_WORKER, STAGED_ON_TASK_QUEUE, STAND_DOWN_OUTCOMES) and
 * leaves its memo alone when its slot comes (below): one marker instead of one per change. Each
 * marker a workflow meets costs it two events and a visibility write (the SDK upserts
 * `TemporalChangeVersion` with it), and a staged task met two of them on every drain; measured,
 * they were a visibility write per attempt the engine's own work does not pay (README,
 * Performance → Flow control). Asked once, at the first point of the path that needs it (a task
 * granted its first slot by the API and released by its worker never does); a task that first
 * asked in a replay of a history without it keeps the markers it has.
 */
export const FLOW_PATH_MARKER = 'flow-controlled-path-2';

/**
 * The task's acquires and releases: a local activity that retries until the limiter has the
 * signal (as the server retries a workflow's), backing off to 10 s while Temporal is away.
 */
const { signalFlowLimiter } = proxyLocalActivities<Activities>({
  startToCloseTimeout: 10_000,
  retry: { initialInterval: 100, maximumInterval: 10_000 },
});

export async function runFlowControlledCallback(
  input: TaskInput,
  flow: TaskFlowControl,
  state: TaskState,
  setStatus: SetStatus,
  phase: { callInFlight: boolean },
): Promise<{ attempt: number; result: TaskState['result'] }> {
  const { policy } = input;
  const maximumAttempts = input.retries + 1;
  let pathMarked: boolean | undefined;
  /** Whether this task runs the path of FLOW_PATH_MARKER; each older change then needs no marker of its own. */
  const current = (): boolean => (pathMarked ??= patched(FLOW_PATH_MARKER));
  const limiter = getExternalWorkflowHandle(limiterWorkflowId(flow.key));
  // The API may have been granted the first slot before it started the task (tryAcquireSlot).
  let granted = flow.firstSlot?.request ?? 0;
  /** Requests whose attempt's worker reports when the call begins (the key has a rate). */
  const reportsStart = new Set<number>(flow.firstSlot?.reportStart === true ? [flow.firstSlot.request] : []);
  /** The highest request whose grant started its parked attempt where it was delivered. */
  let startedWith = 0;
  setHandler(slotGrantedSignal, ({ request, reportStart, started }) => {
    granted = Math.max(granted, request);
    if (reportStart === true) reportsStart.add(request);
    if (started === true) startedWith = Math.max(startedWith, request);
  });
  /** The request the limiter has staged (0: none), by its latest notice. */
  let stagedFor = 0;
  let stageSeq = 0;
  const heard = ({ request, staged, seq }: { request: number; staged: boolean; seq: number }): void => {
    if (seq <= stageSeq) return;
    stageSeq = seq;
    stagedFor = staged ? request : 0;
  };
  setHandler(slotStagedSignal, heard);
  let parks = 0;
  /** The notice a park was refused on (its worker had no room): the task waits for its grant instead. */
  let refusedSeq = -1;

  /**
   * A staged attempt: its activity parks in a worker until an attempt of the key ending there
   * hands it its slot, or a grant starts it; its call's outcome then, or how it ended without a
   * call: `stoodDown` at the limiter's word (unstaged) or a cancel, `unheard` when the limiter's
   * word may have been lost (the park's time limit, its worker's death while parked), `noRoom`
   * when its worker parks as many as it may.
   */
  const runStaged = async (request: number): Promise<CallbackOutcome | 'stoodDown' | 'unheard' | 'noRoom'> => {
    const activityId = stagedActivityId(request - 1, ++parks);
    const { callCallbackStaged } = proxyActivities<Activities>({
      ...(current() || patched(STAGED_ON_TASK_QUEUE) ? {} : { taskQueue: stagedTaskQueue(workflowInfo().taskQueue) }),
      startToCloseTimeout: STAGED_PARK_LIMIT_MS + input.timeoutSeconds * 1000 + ATTEMPT_TIMEOUT_MARGIN_MS,
      heartbeatTimeout: policy.heartbeatTimeoutMs,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      activityId,
      retry: { maximumAttempts: 1 },
    });
    const staged = { priority: input.priority ?? DEFAULT_PRIORITY, createdAt: input.createdAt, seq: stageSeq };
    let settled = false;
    phase.callInFlight = true;
    const parkScope = new CancellationScope();
    let cancelledUnparked = false;
    // Where it parks, it is woken by a grant its delivering worker could not start it with, or
    // told to stand down when the limiter unstages it (a pause, lowered limits, a better waiter).
    // Not started anywhere (its pool of slots is full): its activity is cancelled, which ends one
    // that has not started at once. One the server has given a worker is never 'absent' there
    // ('pending' until it parks); one that starts between the two is cancelled through its beats.
    void (async () => {
      await condition(() => settled || (granted >= request && startedWith < request) || stagedFor !== request);
      const start = granted >= request;
      if (!settled && (await wakeParked(request, start, activityId)) === 'absent' && !settled) {
        cancelledUnparked = true;
        parkScope.cancel();
      }
    })().catch(() => undefined);
    try {
      const outcome = await parkScope.run(() =>
        callCallbackStaged({ ...callbackRequest(input, request - 1), flowSlot: { key: flow.key, request, staged } }),
      );
      if (outcome.kind !== 'stoodDown') return outcome;
      // The worker that delivered the notice unstaging the task stood its park down before the
      // task heard: as good as hearing it (or the task would park again on the notice it had).
      // Read after a marker: during a rolling upgrade an older worker may have run this workflow
      // task, seen such a result as a plain stand-down and parked again, and its history must
      // replay on a newer one as it ran.
      const readsOutcomes = (): boolean => current() || patched(STAND_DOWN_OUTCOMES);
      if (outcome.seq !== undefined && readsOutcomes()) heard({ request, staged: false, seq: outcome.seq });
      if (outcome.reason === STAND_DOWN_NO_ROOM && readsOutcomes()) return 'noRoom';
      return outcome.reason === STAND_DOWN_PARK_LIMIT ? 'unheard' : 'stoodDown';
    } catch (err) {
      if (cancelledUnparked && isCancellation(err)) return 'stoodDown';
      // Its worker died while it was parked (its last beat says so): no call was made, no attempt.
      if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && parkedAtLastBeat(err.cause)) return 'unheard';
      throw err;
    } finally {
      settled = true;
      phase.callInFlight = false;
    }
  };

  /** Finds the worker where the task's staged attempt parks and starts it or stands it down there. */
  const wakeParked = async (request: number, start: boolean, activityId: string): Promise<string> => {
    const { locateHeldCall } = proxyLocalActivities<Activities>({ startToCloseTimeout: 5_000, retry: { maximumAttempts: 2 } });
    const holder = await locateHeldCall({ taskId: input.id });
    if (holder === null) return 'absent';
    const { wakeParkedAttempt } = proxyActivities<Activities>({
      taskQueue: holder,
      // A holder that died never takes it; its parked attempt's heartbeat times out instead.
      scheduleToCloseTimeout: 10_000,
      retry: { maximumAttempts: 1 },
    });
    return wakeParkedAttempt({ taskId: input.id, request, start, activityId }).catch(() => 'absent');
  };

  /** The acquire signal of the current request, in flight or delivered. */
  let asked: Promise<void> = Promise.resolve();
  /** Waits for the request's slot; the outcome of its staged attempt, when that ran instead. */
  const acquire = async (request: number): Promise<CallbackOutcome | undefined> => {
    if (granted >= request) {
      state.flowControl = { key: flow.key, waiting: false };
      return undefined;
    }
    // A task whose first slot the API was refused begins waiting: its first memo says so already.
    const waitingAlready = state.status === 'pending' && state.flowControl?.waiting === true;
    state.flowControl = { key: flow.key, waiting: true };
    setStatus('pending', { publish: !waitingAlready });
    const slot: SlotRequest = {
      taskId: input.id,
      request,
      priority: input.priority ?? DEFAULT_PRIORITY,
      createdAt: input.createdAt,
    };
    // Not cancellable: a cancel now must still find the request in the limiter's history before
    // the release that withdraws it, or the limiter could grant a slot no one gives back. Not
    // awaited before the wait for the grant, which may come in the same workflow task.
    const ask = (): Promise<void> =>
      CancellationScope.nonCancellable(async () => {
        if (current() || patched(LIMITER_SIGNALS_FROM_WORKER))
          return signalFlowLimiter({ key: flow.key, limits: flow.limits, acquire: slot });
        try {
          await limiter.signal(acquireSlotSignal, slot);
        } catch {
          // No limiter runs for the key (an operator terminated it): start one with this task's limits.
          const { ensureFlowLimiter } = proxyLocalActivities<Activities>({ startToCloseTimeout: 10_000 });
          await ensureFlowLimiter({ key: flow.key, limits: flow.limits });
          await limiter.signal(acquireSlotSignal, slot);
        }
      });
    asked = ask();
    // Cancellable: a cancel while waiting ends the task at once, without a callback.
    let staged: CallbackOutcome | undefined;
    for (;;) {
      await condition(() => granted >= request || (stagedFor === request && stageSeq !== refusedSeq));
      if (granted >= request) break;
      const ended = await runStaged(request);
      if (ended === 'noRoom') refusedSeq = stageSeq;
      else if (ended === 'unheard') {
        // The limiter's word may have gone to a park that no longer runs: the task asks again (a
        // repeat of a request the limiter has in line is nothing to it), so it is never left out.
        const before = asked;
        asked = before.catch(() => undefined).then(ask);
      } else if (ended !== 'stoodDown') {
        staged = ended;
        break;
      }
    }
    state.flowControl = { key: flow.key, waiting: false };
    // The call begins in this workflow task (or is over): the memo may keep saying the task
    // waits, as every view of a running task is refined from its pending activities
    // (activities/task-phase.ts), and the memo's next write (a retry, the end) says it anyway. Not
    // one visibility write per attempt for a flag that changes nothing the list filters on.
    setStatus('pending', { publish: !current() });
    return staged;
  };

  const release = async (request: number): Promise<void> => {
    // After the request it releases, and awaited, so that the next request (a retry's) reaches
    // the limiter after this release.
    await CancellationScope.nonCancellable(async () => {
      await asked.catch(() => undefined);
      const slot = { taskId: input.id, request };
      if (current() || patched(LIMITER_SIGNALS_FROM_WORKER)) {
        await signalFlowLimiter({ key: flow.key, limits: flow.limits, release: slot }).catch(() => undefined);
      } else await limiter.signal(releaseSlotSignal, slot).catch(() => undefined);
    });
  };

  let attemptsMade = 0;
  for (;;) {
    const attempt = attemptsMade + 1;
    let waitMs: number;
    let releasedByWorker = false;
    try {
      const stagedOutcome = await acquire(attempt);
      const slot = { key: flow.key, request: attempt, ...(reportsStart.has(attempt) ? { reportStart: true } : {}) };
      const outcome = await runAttempt(input, state, setStatus, phase, attemptsMade, slot, stagedOutcome);
      releasedByWorker = outcome.slotReleased;
      return { attempt: outcome.attempt, result: outcome.result };
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      releasedByWorker = failureDetails(err)?.slotReleased === true;
      attemptsMade = Math.max(attempt, attemptFromFailure(err) ?? 0);
      if (!retryableAsyncFailure(err) || attemptsMade >= maximumAttempts) throw err;
      waitMs = retryAfterMs(err) ?? backoffMs(policy, attemptsMade);
      state.lastError = { message: (err.cause ?? err).message };
    } finally {
      // Decided by the activity's recorded result, so histories from before it replay the same.
      if (!releasedByWorker) await release(attempt);
    }
    state.attempts = attemptsMade;
    state.nextAttemptAt = new Date(Date.now() + waitMs).toISOString();
    setStatus('retrying');
    await sleep(waitMs);
  }
}

/** One attempt: the call, and the wait for its completion when the callee took the work. */
async function runAttempt(
  input: TaskInput,
  state: TaskState,
  setStatus: SetStatus,
  phase: { callInFlight: boolean },
  attemptsMade: number,
  flowSlot: NonNullable<CallbackRequest['flowSlot']>,
  /** The call's outcome when a staged attempt made it. */
  called?: CallbackOutcome,
): Promise<{ attempt: number; result: TaskState['result']; slotReleased: boolean }> {
  const { callCallback } = proxyActivities<Activities>({
    startToCloseTimeout: input.timeoutSeconds * 1000 + ATTEMPT_TIMEOUT_MARGIN_MS,
    heartbeatTimeout: input.policy.heartbeatTimeoutMs,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    // The id says how many attempts came before, as the API's view counts them (task-views.ts).
    ...(attemptsMade > 0 ? { activityId: callbackActivityIdAfter(attemptsMade) } : {}),
    retry: { maximumAttempts: 1 },
  });
  let outcome: CallbackOutcome;
  if (called !== undefined) outcome = called;
  else {
    phase.callInFlight = true;
    try {
      outcome = await callCallback({ ...callbackRequest(input, attemptsMade), flowSlot });
    } finally {
      // A try, not the promise's finally(): each workflow promise costs the SDK a stack capture.
      phase.callInFlight = false;
    }
  }
  if (outcome.kind !== 'accepted') return { ...outcome, slotReleased: outcome.slotReleased === true };

  // The attempt stays in flight, and keeps its slot, until the callee completes or fails it.
  state.attempts = outcome.attempt;
  setStatus('running');
  const completion = await awaitAcceptedCompletion(input, outcome);
  return { attempt: outcome.attempt, result: completion.result, slotReleased: false };
}

function parkedAtLastBeat(timeout: TimeoutFailure): boolean {
  const details = timeout.lastHeartbeatDetails as { parked?: boolean } | undefined;
  return details?.parked === true;
}
