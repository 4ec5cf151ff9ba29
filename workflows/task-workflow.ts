/**
 * One workflow per task: optional delay, the callback (retried by Temporal's own retry policy),
 * then the webhook (its own long retry schedule). Deterministic: no I/O, no clocks but Temporal's.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  metricMeter,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import { attemptRecordedSignal } from './attempt-record.js';
import {
  CANCELLING_INDEXED_STATUS,
  TASK_FAILED_ERROR_TYPE,
  TASK_MEMO_KEY,
  TASK_STATUS_SEARCH_ATTRIBUTE,
  callbackActivityIdAfter,
  cancelTaskSignal,
  indexedTaskStatus,
  isTerminal,
  progressSignal,
  publishEndSignal,
  taskStateQuery,
  type CancelRequest,
  type ScheduledTaskInput,
  type TaskInput,
  type TaskMemo,
  type TaskState,
  type WebhookEvent,
} from './task-contract.js';
import { isScheduledInput, taskInputOf } from './scheduled-input.js';
import { awaitAcceptedCompletion, callbackRequest, type SetStatus } from './callback-calls.js';
import { initialMemo } from './task-start.js';
import { storedMemo } from './task-memo.js';
import { runFlowControlledCallback } from './flow-controlled-callback.js';
import {
  BACKOFF_COEFFICIENT,
  attemptFromFailure,
  backoffMs,
  failureDetails,
  retryableAsyncFailure,
  taskErrorFromFailure,
} from './callback-failures.js';

type Activities = ReturnType<typeof createActivities>;

/** Patch ids (see README, "Changing the workflow safely"). */
const CANCEL_WINS_OVER_FAILURE = 'cancel-wins-over-failure';
const MARK_CANCELLING = 'mark-cancelling';
const TEMPORAL_CANCEL = 'temporal-cancel';
const CUT_OFF_HELD_CALL = 'cut-off-held-call';

/** Room for the activity to classify its own timeout before Temporal's start-to-close fires. */
const ATTEMPT_TIMEOUT_MARGIN_MS = 5_000;

export async function taskWorkflow(raw: TaskInput | ScheduledTaskInput): Promise<TaskState> {
  const input = taskInputOf(raw);
  // The same view the API's create answered with and started the memo from.
  const state: TaskState = initialMemo(input);
  // A schedule's memo cannot name the run (scheduled-input.ts): the run does, first thing.
  if (isScheduledInput(raw)) publishMemo(state);

  let cancelRequest: CancelRequest | undefined;
  // Read through a function: TypeScript cannot see the signal handler assign it between awaits.
  const cancelled = (): CancelRequest | undefined => cancelRequest;
  // A child of the root scope: a cancel request sent through Temporal (the UI's Cancel button,
  // `temporal workflow cancel`) cancels it as the API's cancel signal does.
  const callbackScope = new CancellationScope();
  let indexedStatus = indexedTaskStatus(state.status);
  const index = (value: string): void => {
    // Each upsert is a visibility write: only when the value the list filters on changes.
    if (value === indexedStatus) return;
    indexedStatus = value;
    upsertSearchAttributes([{ key: TASK_STATUS_SEARCH_ATTRIBUTE, value }]);
  };

  /** Whether a callback request may be in flight (the `callCallback` activity is scheduled). */
  const phase = { callInFlight: false };
  const requestCancel = (request: CancelRequest): void => {
    // Once the callback phase is over the outcome is fixed; a late cancel changes nothing.
    if (cancelRequest !== undefined || isTerminal(state.status)) return;
    cancelRequest = request;
    callbackScope.cancel();
    // Shows in the UI and the list that a cancel is under way. Patched: older histories have none.
    if (patched(MARK_CANCELLING)) index(CANCELLING_INDEXED_STATUS);
    // Temporal tells the call of the cancel at its next heartbeat, seconds away: the worker
    // holding it is told at once (activities/held-calls.ts). Not awaited: the workflow goes on
    // as soon as the call ends, and a holder that died is Temporal's heartbeat timeout to find.
    // Patched: older histories did not do it.
    if (phase.callInFlight && patched(CUT_OFF_HELD_CALL)) {
      void CancellationScope.nonCancellable(() => cutOffHeldCall(input.id)).catch(() => undefined);
    }
  };

  setHandler(taskStateQuery, () => state);
  setHandler(cancelTaskSignal, requestCancel);
  // A failed attempt Temporal retries records itself in the history with this signal; the API
  // reads it from there (src/api/tasks/attempt-history.ts). Nothing to do: no command, no state.
  setHandler(attemptRecordedSignal, () => undefined);
  // A cancel request through Temporal ends the task as the API's cancel does (webhook included),
  // and the workflow then ends Canceled. Patched, when the request arrives: older histories took
  // no action on one. (Asked only then: each patch a workflow meets costs a marker and a
  // search-attribute upsert, so none is asked for on every task's path.)
  const rootScope = CancellationScope.current();
  let cancelledThroughTemporal = false;
  const onTemporalCancel = (): void => {
    if (cancelledThroughTemporal || !patched(TEMPORAL_CANCEL)) return;
    cancelledThroughTemporal = true;
    requestCancel({ reason: 'cancel requested through Temporal', attemptsStarted: state.attempts });
  };
  rootScope.cancelRequested.catch(onTemporalCancel);

  setHandler(progressSignal, (update) => {
    if (isTerminal(state.status)) return;
    const { reportedAt, ...progress } = update;
    state.progress = { ...progress, updatedAt: reportedAt ?? new Date().toISOString() };
    // The Temporal UI shows this as the workflow's current details.
    const percent = update.percent !== undefined ? `${update.percent}%` : '';
    setCurrentDetails(`**Progress** ${percent} ${update.message ?? ''}`.trim());
  });

  // A task whose webhook follows its end publishes the end with the webhook's outcome, in the
  // workflow's last task, where the server folds it into the close record: one visibility write
  // and one memo update fewer per task. A webhook slower than the delay has its worker ask for
  // the end now (publishEndSignal). Inputs from before the delay existed publish at once.
  const endDelayMs = input.webhookUrl !== null ? (input.policy.listStatusDelayMs ?? 0) : 0;
  let endUnpublished = false;
  const publishStatus = (): void => {
    endUnpublished = false;
    // An accepted cancel keeps `cancelling` indexed until the task ends.
    if (indexedStatus !== CANCELLING_INDEXED_STATUS || isTerminal(state.status)) index(indexedTaskStatus(state.status));
    publishMemo(state);
  };
  setHandler(publishEndSignal, () => {
    if (endUnpublished) publishStatus();
  });

  const setStatus: SetStatus = (status, { publish } = { publish: true }) => {
    state.status = status;
    state.updatedAt = new Date().toISOString(); // workflow time: deterministic on replay
    if (status !== 'retrying') {
      delete state.nextAttemptAt;
      delete state.lastError;
    }
    if (isTerminal(status) && endDelayMs > 0) endUnpublished = true;
    else if (publish) publishStatus();
  };

  try {
    if (input.delaySeconds > 0) {
      await condition(() => cancelled() !== undefined, input.delaySeconds * 1000);
    }
    if (cancelled() === undefined) {
      if (state.status === 'scheduled') setStatus('pending');
      const flow = input.flowControl;
      const outcome = await callbackScope.run(() =>
        flow !== undefined
          ? runFlowControlledCallback(input, flow, state, setStatus, phase)
          : runCallback(input, state, setStatus, phase),
      );
      state.attempts = outcome.attempt;
      state.result = outcome.result;
      setStatus('succeeded');
    }
  } catch (err) {
    // The cancel may surface here before the cancelRequested handler ran.
    if (isCancellation(err) && rootScope.consideredCancelled) onTemporalCancel();
    const request = cancelled();
    // Once a cancel is accepted, the task ends cancelled even when the cut-off attempt resolves
    // as a failure (its worker died: the heartbeat times out instead of confirming the cancel).
    // Patched: histories recorded before this fix took the `failed` path and must replay so.
    const cancelWins =
      request !== undefined && (isCancellation(err) || (err instanceof ActivityFailure && patched(CANCEL_WINS_OVER_FAILURE)));
    if (request !== undefined && cancelWins) {
      // A call cut off mid-flight names its attempt; one cancelled while waiting to retry does
      // not, and then the count the API saw when it sent the cancel is the best there is.
      state.attempts = Math.max(state.attempts, attemptFromFailure(err) ?? 0, request.attemptsStarted ?? 0);
    } else if (err instanceof ActivityFailure) {
      state.attempts = attemptFromFailure(err) ?? Math.max(state.attempts, input.retries + 1);
      state.error = taskErrorFromFailure(err);
      setStatus('failed');
    } else {
      throw err;
    }
  }

  const request = cancelled();
  if (request !== undefined && !isTerminal(state.status)) {
    state.error = { code: 'cancelled', message: request.reason ?? 'cancelled by request' };
    setStatus('cancelled');
  }

  // Counted once per task (the SDK drops metrics emitted while replaying).
  metricMeter.createCounter('asyncqueue_tasks_completed', undefined, 'tasks that reached a final status').add(1, {
    status: state.status,
  });

  if (input.webhookUrl !== null) {
    const url = input.webhookUrl;
    // After a cancel through Temporal the root scope is cancelled; the webhook must still go out.
    const publishEndAfterMs = endUnpublished ? endDelayMs : undefined;
    await CancellationScope.nonCancellable(() => deliverWebhook(input, url, state, publishEndAfterMs));
    publishStatus();
  }

  if (state.status === 'failed') {
    // Failing the workflow marks the task as failed in the Temporal UI; details carry the view.
    throw ApplicationFailure.create({
      type: TASK_FAILED_ERROR_TYPE,
      message: state.error?.message ?? 'task failed',
      nonRetryable: true,
      details: [state],
    });
  }
  if (cancelledThroughTemporal) {
    // Ends the workflow as Canceled, as the operator asked; the memo holds the final view.
    throw new CancelledFailure('cancel requested through Temporal');
  }
  return state;
}

/**
 * The callback phase: attempts under Temporal's retry policy, until one succeeds or the policy
 * gives up. An attempt the callee accepted for async completion is then awaited in an activity
 * no worker holds; when the callee fails it (retryable) or lets it time out, this schedules the
 * remaining attempts after the same backoff the retry policy would have used.
 */
async function runCallback(
  input: TaskInput,
  state: TaskState,
  setStatus: SetStatus,
  phase: { callInFlight: boolean },
): Promise<{ attempt: number; result: TaskState['result'] }> {
  const { policy } = input;
  const maximumAttempts = input.retries + 1;
  let attemptsMade = 0;
  for (;;) {
    const { callCallback } = proxyActivities<Activities>({
      startToCloseTimeout: input.timeoutSeconds * 1000 + ATTEMPT_TIMEOUT_MARGIN_MS,
      heartbeatTimeout: policy.heartbeatTimeoutMs,
      // The webhook must not go out while the aborted request could still be in flight.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      // A schedule after attempts made says so in its id, so that readers of the server's
      // pending-activity state can count attempts exactly (src/api/tasks/task-views.ts).
      ...(attemptsMade > 0 ? { activityId: callbackActivityIdAfter(attemptsMade) } : {}),
      retry: {
        maximumAttempts: maximumAttempts - attemptsMade,
        initialInterval: policy.retryInitialIntervalMs,
        maximumInterval: policy.retryMaximumIntervalMs,
        backoffCoefficient: BACKOFF_COEFFICIENT,
      },
    });
    phase.callInFlight = true;
    let outcome: Awaited<ReturnType<typeof callCallback>>;
    try {
      outcome = await callCallback(callbackRequest(input, attemptsMade));
    } finally {
      // A try, not the promise's finally(): each workflow promise costs the SDK a stack capture.
      phase.callInFlight = false;
    }
    if (outcome.kind !== 'accepted') return outcome;

    state.attempts = outcome.attempt;
    setStatus('running');
    try {
      const completion = await awaitAcceptedCompletion(input, outcome);
      return { attempt: outcome.attempt, result: completion.result };
    } catch (err) {
      if (!(err instanceof ActivityFailure) || !retryableAsyncFailure(err) || outcome.attempt >= maximumAttempts) {
        throw err;
      }
      attemptsMade = outcome.attempt;
      const waitMs = backoffMs(policy, attemptsMade);
      state.nextAttemptAt = new Date(Date.now() + waitMs).toISOString();
      state.lastError = { message: (err.cause ?? err).message };
      setStatus('retrying');
      await sleep(waitMs);
      setStatus('pending');
    }
  }
}

/** Finds the worker holding the task's call and has it cut the call off. */
async function cutOffHeldCall(taskId: string): Promise<void> {
  const { locateHeldCall } = proxyLocalActivities<Activities>({
    startToCloseTimeout: 5_000,
    retry: { maximumAttempts: 2 },
  });
  const holder = await locateHeldCall({ taskId });
  if (holder === null) return;
  const { abortHeldCall } = proxyActivities<Activities>({
    taskQueue: holder,
    // A holder that died never takes it; its call is found by the heartbeat timeout instead.
    scheduleToCloseTimeout: 10_000,
    retry: { maximumAttempts: 1 },
  });
  await abortHeldCall({ taskId });
}

async function deliverWebhook(
  input: TaskInput,
  url: string,
  state: TaskState,
  publishEndAfterMs: number | undefined,
): Promise<void> {
  const { policy } = input;
  const { deliverWebhook: send } = proxyActivities<Activities>({
    startToCloseTimeout: policy.webhookTimeoutMs + ATTEMPT_TIMEOUT_MARGIN_MS,
    scheduleToCloseTimeout: policy.webhookRetryDurationMs,
    heartbeatTimeout: policy.heartbeatTimeoutMs,
    retry: {
      initialInterval: policy.webhookRetryInitialIntervalMs,
      maximumInterval: policy.webhookRetryMaximumIntervalMs,
      backoffCoefficient: 2,
      // No attempt limit: scheduleToCloseTimeout bounds the webhook's schedule in time instead.
    },
  });
  const event: WebhookEvent = {
    type: `task.${state.status}` as WebhookEvent['type'],
    timestamp: state.updatedAt,
    taskId: input.id,
    status: state.status,
    attempts: state.attempts,
    ...(state.result !== undefined ? { result: state.result } : {}),
    ...(state.error !== undefined ? { error: state.error } : {}),
  };
  const webhook = state.webhook ?? { status: 'pending', attempts: 0 };
  state.webhook = webhook;
  try {
    const outcome = await send({
      taskId: input.id,
      url,
      event,
      timeoutMs: policy.webhookTimeoutMs,
      ...(publishEndAfterMs !== undefined ? { publishEndAfterMs } : {}),
    });
    webhook.status = 'delivered';
    webhook.attempts = outcome.attempt;
    webhook.statusCode = outcome.statusCode;
    webhook.deliveredAt = new Date().toISOString();
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const details = failureDetails(err);
    webhook.status = 'failed';
    webhook.attempts = attemptFromFailure(err) ?? webhook.attempts;
    if (details?.statusCode !== undefined) webhook.statusCode = details.statusCode;
    webhook.error = (err.cause ?? err).message;
  }
}

function publishMemo(state: TaskState): void {
  const { result: _result, progress, ...rest } = state;
  let memo: TaskMemo = rest;
  if (progress !== undefined) {
    const { data: _data, ...summary } = progress;
    memo = { ...rest, progress: summary };
  }
  upsertMemo({ [TASK_MEMO_KEY]: storedMemo(memo) });
}
