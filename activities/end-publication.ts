/**
 * A task whose webhook follows its end leaves the end unpublished (workflows/task-workflow.ts):
 * delivered within `publishEndAfterMs`, the webhook's outcome carries the end into visibility with
 * the workflow's close. A slower webhook must not hide the end from the list for its whole
 * retry schedule, so the worker delivering it asks the workflow to publish the end now: once the
 * first attempt has run that long or failed, and at the start of the second attempt (in case the
 * first one's worker died first). At most two signals when the webhook is slow, none in the usual
 * case; a repeat is a no-op for the workflow.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { publishEndSignal, workflowIdForTask, type WebhookRequest } from '../workflows/task-contract.js';

/** How long a failed attempt waits for its ask to be taken before it reports the failure. */
const PUBLISH_WAIT_MS = 2_000;

/** Runs `deliver` (one webhook attempt), asking for the end's publication when it is slow. */
export async function publishingEndWhenSlow<T>(request: WebhookRequest, deliver: () => Promise<T>): Promise<T> {
  const after = request.publishEndAfterMs;
  if (after === undefined) return deliver();
  const context = Context.current();
  const publish = (): Promise<void> =>
    context.client.workflow
      .getHandle(workflowIdForTask(request.taskId))
      .signal(publishEndSignal)
      .catch((err: unknown) => {
        // The end is still published with the webhook's outcome; the list only learns it later.
        log.warn('could not ask for the task end to be published', { taskId: request.taskId, error: String(err) });
      });
  const attempt = context.info.attempt;
  if (attempt === 2) void publish();
  const timer = attempt === 1 ? setTimeout(() => void publish(), after) : undefined;
  try {
    return await deliver();
  } catch (err) {
    // Temporal retries the webhook after a backoff: the end need not wait for it, and is asked for
    // before the failure is reported (not for long). A webhook that will not be retried ends now,
    // and its outcome publishes the end.
    const final = err instanceof ApplicationFailure && err.nonRetryable;
    if (attempt === 1 && !final) await Promise.race([publish(), delay(PUBLISH_WAIT_MS)]);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
