/**
 * A schedule's runs start with the schedule's memo, which cannot name the run (its id and time
 * are Temporal's to choose). Until the run publishes its own memo, its id comes from its workflow
 * id and its creation time from its start, as the workflow derives them (scheduled-input.ts).
 */
import { WORKFLOW_ID_PREFIX, type TaskMemo } from '../../../workflows/task-contract.js';

export function withRunIdentity(memo: TaskMemo, workflowId: string, startedAt: string | undefined): TaskMemo {
  if (memo.id !== '') return memo;
  const id = workflowId.startsWith(WORKFLOW_ID_PREFIX) ? workflowId.slice(WORKFLOW_ID_PREFIX.length) : workflowId;
  const createdAt = startedAt ?? memo.createdAt;
  return { ...memo, id, createdAt, updatedAt: createdAt };
}

/** Temporal's search attribute on every workflow a schedule started: the schedule's id. */
export const SCHEDULED_BY_ATTRIBUTE = 'TemporalScheduledById';
