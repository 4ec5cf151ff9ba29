/**
 * What a test file leaves behind on the shared dev server. Tests without a worker (or that stop
 * theirs) leave workflows running for ever; each file terminates its own, found by its task queue.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { eventually } from './eventually.js';

interface OnTaskQueue {
  client: Client;
  config: { taskQueue: string };
}

/**
 * Terminates every workflow still running on the harness's task queue, once visibility has caught
 * up with everything started before this call; returns how many it terminated.
 */
export async function terminateRunning(harness: OnTaskQueue, reason = 'test cleanup'): Promise<number> {
  await visibilityCaughtUp(harness);
  const query = `TaskQueue = '${harness.config.taskQueue}' AND ExecutionStatus = 'Running'`;
  let terminated = 0;
  for await (const execution of harness.client.workflow.list({ query })) {
    try {
      await harness.client.workflow.getHandle(execution.workflowId, execution.runId).terminate(reason);
      terminated++;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err; // ended meanwhile
    }
  }
  return terminated;
}

/**
 * Waits until the visibility store lists a marker workflow started now, so that a count or list
 * taken next covers the workflows started before it: the store is written asynchronously, from a
 * queue the server fills in the order it recorded the starts. The marker runs on a queue of its
 * own (no worker picks it up), outside the harness's, and is terminated at once.
 */
export async function visibilityCaughtUp(harness: OnTaskQueue): Promise<void> {
  const workflowId = `visibility-marker-${randomUUID()}`;
  const taskQueue = `${harness.config.taskQueue}-visibility-marker`;
  const handle = await harness.client.workflow.start('visibilityMarker', { taskQueue, workflowId });
  try {
    await eventually(
      async () => {
        const { count } = await harness.client.workflow.count(`WorkflowId = '${workflowId}'`);
        return count === 1 ? true : undefined;
      },
      { what: `visibility to list ${workflowId}` },
    );
  } finally {
    await handle.terminate('visibility marker');
  }
}
