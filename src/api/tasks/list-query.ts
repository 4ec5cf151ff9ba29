/** What the list asks visibility, and how it reads what visibility answers. */
import type { WorkflowExecutionDescription } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import proto, { type temporal } from '@temporalio/proto';
import { TASK_MEMO_KEY, indexedTaskStatus, type TaskMemo, type TaskStatus } from '../../../workflows/task-contract.js';
import type { ClosedExecutionStatus } from './task-views.js';
import { withRunIdentity } from '../schedules/scheduled-runs.js';

const { WorkflowExecutionStatus } = proto.temporal.api.enums.v1;

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
  const memo = description.memo![TASK_MEMO_KEY] as TaskMemo; // describe() checked that it is there
  return withRunIdentity(memo, description.workflowId, description.startTime.toISOString());
}

export function decodePayload<T>(payload: temporal.api.common.v1.IPayload | null | undefined): T | undefined {
  if (payload == null) return undefined;
  return defaultPayloadConverter.fromPayload<T>(payload as never);
}
