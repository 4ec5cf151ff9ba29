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
  TimeoutFailure,
  condition,
  isCancellation,
  metricMeter,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import {
  CANCELLING_INDEXED_STATUS,
  TASK_FAILED_ERROR_TYPE,
  TASK_MEMO_KEY,
  TASK_STATUS_SEARCH_ATTRIBUTE,
  cancelTaskSignal,
  indexedTaskStatus,
  isTerminal,
  progressSignal,
  taskStateQuery,
  type AttemptFailureDetails,
  type CancelRequest,
  type TaskError,
  type TaskInput,
  type TaskMemo,
  type TaskState,
  type TaskStatus,
  type WebhookEvent,
} from './task-contract.js';

type Activities = ReturnType<typeof createActivities>;

/** Patch ids (see README, "Changing the workflow safely"). */
const CANCEL_WINS_OVER_FAILURE = 'cancel-wins-over-failure';
const MARK_CANCELLING = 'mark-cancelling';

/** Room for the activity to classify its own timeout before Temporal's start-to-close fires. */
const ATTEMPT_TIMEOUT_MARGIN_MS = 5_000;

export async function taskWorkflow(input: TaskInput): Promise<TaskState> {
  const state: TaskState = {
    id: input.id,
    status: input.delaySeconds > 0 ? 'scheduled' : 'pending',
    callbackUrl: input.callbackUrl,
    webhookUrl: input.webhookUrl,
    retries: input.retries,
    timeout: input.timeoutSeconds,
    delay: input.delaySeconds,
    createdAt: input.createdAt,
    updatedAt: input.createdAt,
    attempts: 0,
    ...(input.webhookUrl ? { webhook: { status: 'pending' as const, attempts: 0 } } : {}),
  };

  let cancelRequest: CancelRequest | undefined;
  // Read through a function: TypeScript cannot see the signal handler assign it between awaits.
  const cancelled = (): CancelRequest | undefined => cancelRequest;
  const callbackScope = new CancellationScope();

  setHandler(taskStateQuery, () => state);
  setHandler(cancelTaskSignal, (request) => {
    // Once the callback phase is over the outcome is fixed; a late cancel changes nothing.
    if (cancelRequest !== undefined || isTerminal(state.status)) return;
    cancelRequest = request;
    callbackScope.cancel();
    // Workers watch for this value to cut a held call off without waiting for its heartbeat
    // (activities/cancel-watch.ts). Patched: older histories have no such upsert.
    if (patched(MARK_CANCELLING)) {
      upsertSearchAttributes([{ key: TASK_STATUS_SEARCH_ATTRIBUTE, value: CANCELLING_INDEXED_STATUS }]);
    }
  });

  setHandler(progressSignal, (update) => {
    if (isTerminal(state.status)) return;
    state.progress = { ...update, updatedAt: new Date().toISOString() };
    // The Temporal UI shows this as the workflow's current details.
    const percent = update.percent !== undefined ? `${update.percent}%` : '';
    setCurrentDetails(`**Progress** ${percent} ${update.message ?? ''}`.trim());
  });

  const setStatus = (status: TaskStatus): void => {
    state.status = status;
    state.updatedAt = new Date().toISOString(); // workflow time: deterministic on replay
    upsertSearchAttributes([{ key: TASK_STATUS_SEARCH_ATTRIBUTE, value: indexedTaskStatus(status) }]);
    publishMemo(state);
  };

  if (input.delaySeconds > 0) {
    await condition(() => cancelled() !== undefined, input.delaySeconds * 1000);
  }

  if (cancelled() === undefined) {
    if (state.status === 'scheduled') setStatus('pending');
    const { callCallback } = proxyActivities<Activities>({
      startToCloseTimeout: input.timeoutSeconds * 1000 + ATTEMPT_TIMEOUT_MARGIN_MS,
      heartbeatTimeout: input.policy.heartbeatTimeoutMs,
      // The webhook must not go out while the aborted request could still be in flight.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: {
        maximumAttempts: input.retries + 1,
        initialInterval: input.policy.retryInitialIntervalMs,
        maximumInterval: input.policy.retryMaximumIntervalMs,
        backoffCoefficient: 2,
      },
    });
    try {
      const outcome = await callbackScope.run(() =>
        callCallback({
          taskId: input.id,
          url: input.callbackUrl,
          payload: input.payload,
          headers: input.headers,
          timeoutMs: input.timeoutSeconds * 1000,
          ...(input.taskToken !== undefined ? { taskToken: input.taskToken } : {}),
        }),
      );
      state.attempts = outcome.attempt;
      state.result = outcome.result;
      setStatus('succeeded');
    } catch (err) {
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
        state.attempts = attemptFromFailure(err) ?? input.retries + 1;
        state.error = taskErrorFromFailure(err);
        setStatus('failed');
      } else {
        throw err;
      }
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
    await deliverWebhook(input, input.webhookUrl, state);
    publishMemo(state);
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
  return state;
}

async function deliverWebhook(input: TaskInput, url: string, state: TaskState): Promise<void> {
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
    const outcome = await send({ taskId: input.id, url, event, timeoutMs: policy.webhookTimeoutMs });
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
  const { result: _result, ...memo } = state;
  upsertMemo({ [TASK_MEMO_KEY]: memo satisfies TaskMemo });
}

function failureDetails(err: unknown): AttemptFailureDetails | undefined {
  if (!(err instanceof ActivityFailure)) return undefined;
  const cause = err.cause;
  if (cause instanceof ApplicationFailure) return cause.details?.[0] as AttemptFailureDetails | undefined;
  if (cause instanceof TimeoutFailure) return cause.lastHeartbeatDetails as AttemptFailureDetails | undefined;
  if (cause instanceof CancelledFailure) return cause.details?.[0] as AttemptFailureDetails | undefined;
  return undefined;
}

function attemptFromFailure(err: unknown): number | undefined {
  const attempt = failureDetails(err)?.attempt;
  return typeof attempt === 'number' ? attempt : undefined;
}

function taskErrorFromFailure(err: ActivityFailure): TaskError {
  const cause = err.cause;
  const details = failureDetails(err);
  if (cause instanceof TimeoutFailure) {
    return { code: 'callback_timeout', message: `callback attempt timed out (${cause.timeoutType ?? 'timeout'})` };
  }
  return {
    code: details?.code ?? 'callback_failed',
    message: cause?.message ?? err.message,
    ...(details?.statusCode !== undefined ? { statusCode: details.statusCode } : {}),
  };
}
