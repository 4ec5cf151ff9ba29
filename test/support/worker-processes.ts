/**
 * Workers as processes of their own on a harness's task queue (`npm run worker`, as deployed), for
 * the tests that kill or stop them and the measure that times them apart from the API.
 */
import { runEntry, type Started } from '../../src/dev/entry-points.js';
import { eventually } from './eventually.js';
import { TEST_SIGNING_SECRET, TEST_TASK_TOKEN_SECRET, type Harness } from './harness.js';

/** Starts a worker process on `on`'s task queue; `extra` adds or overrides its environment. */
export function startWorkerProcess(on: Harness, extra: Record<string, string> = {}): Started {
  return runEntry('worker-main', {
    TEMPORAL_ADDRESS: on.config.temporalAddress!,
    ASYNCQUEUE_TASK_QUEUE: on.config.taskQueue,
    ASYNCQUEUE_SIGNING_SECRET: TEST_SIGNING_SECRET,
    ASYNCQUEUE_TASK_TOKEN_SECRET: TEST_TASK_TOKEN_SECRET,
    ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'true',
    LOG_LEVEL: 'warn',
    ...extra,
  });
}

/** Waits until `count` distinct workers poll `on`'s task queue for activities. */
export async function waitForPollers(on: Harness, count: number, timeoutMs = 60_000): Promise<void> {
  await eventually(
    async () => {
      const response = await on.client.workflowService.describeTaskQueue({
        namespace: on.config.temporalNamespace,
        taskQueue: { name: on.config.taskQueue },
        taskQueueType: 2, // activity
      });
      return new Set((response.pollers ?? []).map((poller) => poller.identity)).size >= count ? true : undefined;
    },
    { timeoutMs, what: `${count} activity pollers` },
  );
}
