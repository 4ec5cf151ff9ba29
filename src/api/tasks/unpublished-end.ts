/**
 * A task whose webhook follows its end publishes the end with the webhook's outcome, or once the
 * webhook is slow (TaskPolicy's `listStatusDelayMs`): for that while its memo still says the
 * callback phase. Its history already says more: the webhook's scheduled input is the final event
 * (status, attempts, result, error). Views read without the worker (lists, cancels, a worker that
 * does not answer, a workflow stopped from outside meanwhile) take the end from there, so they
 * never show an ended task as still running.
 */
import type { TemporalCalls } from '../temporal/temporal-calls.js';
import {
  WEBHOOK_ACTIVITY,
  isTerminal,
  type TaskState,
  type WebhookEvent,
  type WebhookRequest,
} from '../../../workflows/task-contract.js';
import { endedBeforeItsMemo, type PendingActivity } from '../../../activities/task-phase.js';
import { decodePayload } from './list-query.js';

/** `view` with the end its memo does not carry yet, when a webhook under way says it has one. */
export async function withUnpublishedEnd(
  calls: TemporalCalls,
  id: string,
  runId: string | undefined,
  view: TaskState,
  pending: readonly PendingActivity[],
): Promise<TaskState> {
  if (!endedBeforeItsMemo(view, pending)) return view;
  return withEnd(view, await endInHistory(calls, id, runId));
}

/** The final event the task's webhook was scheduled with; none when no webhook went out. */
export async function endInHistory(
  calls: TemporalCalls,
  id: string,
  runId: string | undefined,
): Promise<WebhookEvent | undefined> {
  const history = await calls.rpc(() => calls.handle(id, runId).fetchHistory(), { taskId: id });
  let request: WebhookRequest | undefined;
  for (const event of history.events ?? []) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name !== WEBHOOK_ACTIVITY) continue;
    request = decodePayload<WebhookRequest>(scheduled.input?.payloads?.[0]) ?? request;
  }
  return request?.event;
}

/**
 * The memo of a workflow stopped from outside (terminated, timed out) with the end it had reached,
 * when it was stopped before publishing it. Only a task with a webhook can be in that state.
 */
export async function stoppedWithEnd<T extends TaskState>(
  calls: TemporalCalls,
  id: string,
  runId: string | undefined,
  memo: T,
): Promise<T> {
  if (isTerminal(memo.status) || memo.webhook === undefined) return memo;
  return withEnd(memo, await endInHistory(calls, id, runId));
}

/** `view` as of the webhook's event (its webhook fields stay: they are the webhook's own). */
export function withEnd<T extends TaskState>(view: T, event: WebhookEvent | undefined): T {
  if (event === undefined || !isTerminal(event.status) || isTerminal(view.status)) return view;
  const { nextAttemptAt: _next, lastError: _lastError, ...rest } = view;
  return {
    ...rest,
    status: event.status,
    attempts: event.attempts,
    updatedAt: event.timestamp,
    ...(event.result !== undefined ? { result: event.result } : {}),
    ...(event.error !== undefined ? { error: event.error } : {}),
  } as T;
}
