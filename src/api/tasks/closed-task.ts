/**
 * A closed task's view: its workflow's result (the final state), the failure's details for a
 * failed task, or, for a workflow stopped from outside (terminated, timed out), what its memo and
 * history say (task-views.ts `closedView`). Needs no worker.
 */
import { WorkflowFailedError, type WorkflowExecutionDescription } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  AWAIT_COMPLETION_ACTIVITY,
  CALLBACK_ACTIVITY,
  TASK_FAILED_ERROR_TYPE,
  TASK_STATUS_SEARCH_ATTRIBUTE,
  type JsonValue,
  type TaskMemo,
  type TaskState,
} from '../../../workflows/task-contract.js';
import type { TemporalCalls } from '../temporal/temporal-calls.js';
import { closedExecutionStatus, decodePayload } from './list-query.js';
import { closedView } from './task-views.js';
import { stoppedWithEnd } from './unpublished-end.js';

export async function closedTaskState(
  calls: TemporalCalls,
  id: string,
  description: WorkflowExecutionDescription,
  memo: TaskMemo,
): Promise<TaskState> {
  const closed = closedExecutionStatus(description.raw.workflowExecutionInfo?.status);
  if (closed === 'Completed' || closed === 'Failed') {
    try {
      return await calls.rpc(() => calls.handle(id, description.runId).result(), { taskId: id });
    } catch (err) {
      const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
      if (cause instanceof ApplicationFailure && cause.type === TASK_FAILED_ERROR_TYPE && cause.details?.[0]) {
        return cause.details[0] as TaskState;
      }
      if (!(err instanceof WorkflowFailedError)) throw err;
    }
  }
  // Stopped from outside before its end was published (unpublished-end.ts): the webhook's event has it.
  const ended = await stoppedWithEnd(calls, id, description.runId, memo);
  const view = closedView(ended, {
    execution: closed ?? 'Terminated',
    closedAt: description.closeTime?.toISOString(),
    indexedStatus: description.typedSearchAttributes.get(TASK_STATUS_SEARCH_ATTRIBUTE),
  });
  // The webhook's event carried the result already: no second read of the history.
  if (view.status !== 'succeeded' || view.result !== undefined) return view;
  // Stopped while delivering the webhook: the memo has no result, the callback's completion has.
  const result = await resultFromHistory(calls, id, description.runId);
  return result === undefined ? view : { ...view, result };
}

async function resultFromHistory(calls: TemporalCalls, id: string, runId: string): Promise<JsonValue | undefined> {
  const history = await calls.rpc(() => calls.handle(id, runId).fetchHistory(), { taskId: id });
  const names = new Map<string, string>();
  let result: JsonValue | undefined;
  for (const event of history.events ?? []) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name != null) names.set(String(event.eventId), scheduled.activityType.name);
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed == null) continue;
    const name = names.get(String(completed.scheduledEventId));
    if (name !== CALLBACK_ACTIVITY && name !== AWAIT_COMPLETION_ACTIVITY) continue;
    const value = decodePayload<{ result?: JsonValue; kind?: string }>(completed.result?.payloads?.[0]);
    if (value !== undefined && value.kind !== 'accepted' && 'result' in value) result = value.result;
  }
  return result;
}
