/** What a task's workflow history says, for checks that must not rest on sleeping and hoping. */
import type { Client } from '@temporalio/client';
import { CALLBACK_ACTIVITY, workflowIdForTask } from '../../workflows/task-contract.js';
import { eventually } from './eventually.js';

/**
 * The callback attempts a task's workflow made, read from its history once it has closed, when no
 * attempt can start any more. Each scheduled callback activity records the attempt it ended on.
 */
export async function callbackAttemptsOnceClosed(on: { client: Client }, taskId: string): Promise<number> {
  const handle = on.client.workflow.getHandle(workflowIdForTask(taskId));
  await eventually(async () => ((await handle.describe()).status.name !== 'RUNNING' ? true : undefined), {
    what: `the workflow of task ${taskId} to close`,
  });
  const callbacks = new Set<string>();
  let attempts = 0;
  for (const event of (await handle.fetchHistory()).events ?? []) {
    if (event.activityTaskScheduledEventAttributes?.activityType?.name === CALLBACK_ACTIVITY)
      callbacks.add(String(event.eventId));
    const started = event.activityTaskStartedEventAttributes;
    if (started && callbacks.has(String(started.scheduledEventId))) attempts += started.attempt ?? 1;
  }
  return attempts;
}
