/**
 * A running task's phase as the server's pending-activity state tells it: whether the callback
 * attempt has started (running) or waits for its retry (retrying), how many attempts were made,
 * how many webhook attempts. The memo and the indexed status cannot say it (`pending`, `running`
 * and `retrying` share one indexed value). Read by the API for every view of a running task and
 * by the bulk operation's status filter, so both judge a task alike.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import proto, { type temporal } from '@temporalio/proto';
import {
  AWAIT_COMPLETION_ACTIVITY,
  CALLBACK_ACTIVITY,
  WEBHOOK_ACTIVITY,
  callbackAttemptsBefore,
  isTerminal,
  type TaskState,
} from '../workflows/task-contract.js';
import { CALLBACK_STAGED_ACTIVITY } from '../workflows/staged-attempt-contract.js';

const { PendingActivityState } = proto.temporal.api.enums.v1;
export type PendingActivity = temporal.api.workflow.v1.IPendingActivityInfo;

/** Refines the workflow's own view with what only the server knows while an activity is pending. */
export function withPendingActivities(view: TaskState, pending: readonly PendingActivity[]): TaskState {
  const refined: TaskState = { ...view };
  for (const activity of pending) {
    const started = activity.state === PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;
    const attempt = activity.attempt ?? 1;
    const attemptsStarted = started ? attempt : attempt - 1;
    const name = activity.activityType?.name;
    if (name === CALLBACK_ACTIVITY && !isTerminal(view.status)) {
      // Attempts made before this activity was scheduled (attempts that awaited completion), as
      // its id says, plus the server's count of its own; the view may already be newer.
      refined.attempts = Math.max(view.attempts, callbackAttemptsBefore(activity.activityId) + attemptsStarted);
      if (started || activity.state === PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED) {
        refined.status = 'running';
      } else if (attempt > 1) {
        refined.status = 'retrying';
        const next = timestampToIso(activity.nextAttemptScheduleTime) ?? timestampToIso(activity.scheduledTime);
        if (next !== undefined) refined.nextAttemptAt = next;
      } else {
        refined.status = 'pending';
      }
      if (activity.lastFailure?.message) refined.lastError = { message: activity.lastFailure.message };
      // A flow-controlled task schedules its call once its slot has come; its memo, written when
      // it began to wait, may say it still does (flow-controlled-callback.ts).
      if (refined.flowControl !== undefined) refined.flowControl = { ...refined.flowControl, waiting: false };
    } else if (name === CALLBACK_STAGED_ACTIVITY && !isTerminal(view.status) && started && callBegun(activity)) {
      // A staged attempt handed its slot: its call is in flight though the workflow has not heard.
      refined.attempts = Math.max(view.attempts, callbackAttemptsBefore(activity.activityId) + 1);
      refined.status = 'running';
      if (refined.flowControl !== undefined) refined.flowControl = { ...refined.flowControl, waiting: false };
    } else if (name === AWAIT_COMPLETION_ACTIVITY && !isTerminal(view.status)) {
      refined.status = 'running';
    } else if (name === WEBHOOK_ACTIVITY && view.webhook !== undefined) {
      refined.webhook = { ...view.webhook, attempts: Math.max(view.webhook.attempts, attemptsStarted) };
    }
  }
  return refined;
}

/** A staged attempt's beats say `parked: true` while it parks; its call's own beats do not. */
function callBegun(activity: PendingActivity): boolean {
  const payload = activity.heartbeatDetails?.payloads?.[0];
  if (payload == null) return false;
  try {
    return defaultPayloadConverter.fromPayload<{ parked?: boolean }>(payload as never)?.parked !== true;
  } catch {
    return false;
  }
}

/**
 * Whether the task has ended though `view` (its memo) does not say so yet: a task whose webhook
 * follows its end publishes the end with the webhook's outcome, or when the webhook is slow
 * (TaskPolicy's `listStatusDelayMs`), and its webhook is scheduled only once it has ended.
 */
export function endedBeforeItsMemo(view: TaskState, pending: readonly PendingActivity[]): boolean {
  return !isTerminal(view.status) && pending.some((activity) => activity.activityType?.name === WEBHOOK_ACTIVITY);
}

/** A protobuf timestamp of the server's as ISO 8601. */
export function timestampToIso(timestamp: PendingActivity['scheduledTime']): string | undefined {
  if (!timestamp) return undefined;
  const millis = Number(timestamp.seconds ?? 0) * 1000 + Math.floor((timestamp.nanos ?? 0) / 1e6);
  return new Date(millis).toISOString();
}
