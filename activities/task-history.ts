/**
 * A task's input, read from the first event of its workflow's history: it is there for as long as
 * the task is retained, whether the task runs, ended, or no worker is running at all. Replays (the
 * API's and a bulk operation's) copy it.
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { workflowIdForTask, type TaskInput } from '../workflows/task-contract.js';

export class TaskInputMissingError extends Error {
  constructor(readonly taskId: string) {
    super(`task ${taskId}: its workflow history has no input`);
  }
}

export async function readTaskInput(client: Client, taskId: string, runId?: string): Promise<TaskInput> {
  const response = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId: workflowIdForTask(taskId), ...(runId !== undefined ? { runId } : {}) },
    // The started event is the first; nothing else is read.
    maximumPageSize: 1,
  });
  const payload = response.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (payload == null) throw new TaskInputMissingError(taskId);
  return defaultPayloadConverter.fromPayload<TaskInput>(payload as never);
}
