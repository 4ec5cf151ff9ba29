/** What the list asks visibility, and how it reads what visibility answers. */
import type { WorkflowExecutionDescription } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import proto, { type temporal } from '@temporalio/proto';
import {
  FLOW_CONTROL_KEY_SEARCH_ATTRIBUTE,
  TASK_LABELS_SEARCH_ATTRIBUTE,
  TASK_MEMO_KEY,
  SCHEDULE_ID_PREFIX,
  TASK_WORKFLOW_TYPE,
  WORKFLOW_ID_PREFIX,
  indexedTaskStatus,
  type TaskMemo,
  type TaskStatus,
} from '../../../workflows/task-contract.js';
import type { ClosedExecutionStatus } from './task-views.js';
import { SCHEDULED_BY_ATTRIBUTE } from '../schedules/scheduled-runs.js';
import { memoFromStored, type AnyTaskMemo } from '../../../workflows/task-memo.js';

const { WorkflowExecutionStatus } = proto.temporal.api.enums.v1;

/** What the list and bulk actions select tasks by; every criterion given must hold. */
export interface TaskCriteria {
  status?: TaskStatus;
  /** Tasks carrying every one of these labels. */
  labels?: readonly string[];
  /** ISO timestamps: created at or after, and before. */
  createdAfter?: string;
  createdBefore?: string;
  flowControlKey?: string;
  /** The runs of this schedule (its id without our prefix). */
  scheduleId?: string;
}

/**
 * The visibility query for tasks matching `criteria`. `createdAt` is read as the workflow's
 * `StartTime`, which the server sets a few milliseconds after it.
 */
export function tasksQuery(criteria: TaskCriteria): string {
  const filters = [`WorkflowType = '${TASK_WORKFLOW_TYPE}'`, `WorkflowId STARTS_WITH '${WORKFLOW_ID_PREFIX}'`];
  if (criteria.status !== undefined) filters.push(statusFilter(criteria.status));
  // `=` on a KeywordList matches a list that contains the value. Labels are of a character set
  // without quotes (LABEL_PATTERN), so they need no escaping.
  for (const label of new Set(criteria.labels ?? [])) filters.push(`${TASK_LABELS_SEARCH_ATTRIBUTE.name} = '${label}'`);
  if (criteria.createdAfter !== undefined) filters.push(`StartTime >= '${criteria.createdAfter}'`);
  if (criteria.createdBefore !== undefined) filters.push(`StartTime < '${criteria.createdBefore}'`);
  if (criteria.flowControlKey !== undefined) {
    filters.push(`${FLOW_CONTROL_KEY_SEARCH_ATTRIBUTE.name} = ${quoted(criteria.flowControlKey)}`);
  }
  // The schema's pattern keeps the id to letters, digits, _ and -: nothing to escape.
  if (criteria.scheduleId !== undefined)
    filters.push(`${SCHEDULED_BY_ATTRIBUTE} = '${SCHEDULE_ID_PREFIX}${criteria.scheduleId}'`);
  return filters.join(' AND ');
}

/**
 * A string literal of Temporal's visibility query language: a quote is doubled. Measured on the
 * dev server's SQLite visibility, a backslash is taken as an escape and a double quote matches
 * nothing whatever the escaping, so keys holding either are refused before they get here
 * (operation-schemas.ts).
 */
function quoted(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * The visibility query for a status. The indexed `TaskStatus` is what the workflow last set; a
 * workflow stopped from outside (terminated, timed out, cancelled by an older version) could not
 * set it, so its execution status decides (task-views.ts, `closedView`).
 */
export function statusFilter(status: TaskStatus): string {
  const stoppedOutside = `ExecutionStatus IN ('Terminated', 'TimedOut', 'Failed')`;
  const unfinished = `TaskStatus IN ('scheduled', 'running')`;
  switch (status) {
    case 'scheduled':
    case 'pending':
    case 'running':
    case 'retrying':
      return `TaskStatus = '${indexedTaskStatus(status)}' AND ExecutionStatus = 'Running'`;
    case 'succeeded':
      return `TaskStatus = 'succeeded'`;
    case 'failed':
      return `(TaskStatus = 'failed' OR (${stoppedOutside} AND ${unfinished}))`;
    case 'cancelled':
      return `(TaskStatus = 'cancelled' OR (ExecutionStatus != 'Running' AND TaskStatus = 'cancelling') OR (ExecutionStatus = 'Canceled' AND ${unfinished}))`;
  }
}

const CLOSED_STATUS_NAMES: Partial<Record<number, ClosedExecutionStatus>> = {
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED]: 'Completed',
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED]: 'Failed',
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED]: 'Canceled',
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED]: 'Terminated',
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT]: 'TimedOut',
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW]: 'ContinuedAsNew',
};

export function closedExecutionStatus(status: number | null | undefined): ClosedExecutionStatus | undefined {
  return status == null ? undefined : CLOSED_STATUS_NAMES[status];
}

export function taskMemo(description: WorkflowExecutionDescription): TaskMemo {
  const memo = description.memo![TASK_MEMO_KEY] as AnyTaskMemo; // describe() checked that it is there
  return memoFromStored(memo, description.workflowId, description.startTime.toISOString());
}

export function decodePayload<T>(payload: temporal.api.common.v1.IPayload | null | undefined): T | undefined {
  if (payload == null) return undefined;
  return defaultPayloadConverter.fromPayload<T>(payload as never);
}
