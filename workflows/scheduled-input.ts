/**
 * A schedule's runs share one input without an id or a creation time (task-contract.ts,
 * `ScheduledTaskInput`): each run takes them from its own workflow info, deterministically.
 */
import { workflowInfo } from '@temporalio/workflow';
import { WORKFLOW_ID_PREFIX, type ScheduledTaskInput, type TaskInput } from './task-contract.js';

export function taskInputOf(input: TaskInput | ScheduledTaskInput): TaskInput {
  if (input.id !== undefined && input.createdAt !== undefined) return input as TaskInput;
  const info = workflowInfo();
  const id = info.workflowId.startsWith(WORKFLOW_ID_PREFIX) ? info.workflowId.slice(WORKFLOW_ID_PREFIX.length) : info.workflowId;
  return { ...input, id, createdAt: info.startTime.toISOString() };
}

/** Whether the input is a schedule's, whose runs must publish their memo at once (task-workflow.ts). */
export function isScheduledInput(input: TaskInput | ScheduledTaskInput): input is ScheduledTaskInput {
  return input.id === undefined;
}
