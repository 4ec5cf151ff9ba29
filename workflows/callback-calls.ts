/**
 * What every callback attempt sends and how an attempt the callee took for async completion is
 * awaited: shared by the retry-policy path (task-workflow.ts) and the flow-controlled one
 * (flow-controlled-callback.ts), so both call the callee the same way. Deterministic.
 */
import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import type { AsyncCompletion, CallbackAccepted, CallbackRequest, TaskInput, TaskStatus } from './task-contract.js';

type Activities = ReturnType<typeof createActivities>;

/**
 * Sets the task's status (and `updatedAt`) and publishes its view in the memo, unless `publish`
 * is false: a change every view refines from the pending activities anyway needs no memo write.
 */
export type SetStatus = (status: TaskStatus, options?: { publish: boolean }) => void;

/** The `callCallback` request of the attempt after `attemptsMade` attempts. */
export function callbackRequest(input: TaskInput, attemptsMade: number): CallbackRequest {
  return {
    taskId: input.id,
    url: input.callbackUrl,
    ...(input.method !== undefined ? { method: input.method } : {}),
    payload: input.payload,
    headers: input.headers,
    timeoutMs: input.timeoutSeconds * 1000,
    ...(attemptsMade > 0 ? { attemptOffset: attemptsMade } : {}),
  };
}

/** Waits, in an activity no worker holds, for `/complete` or `/fail` of an accepted attempt. */
export function awaitAcceptedCompletion(input: TaskInput, outcome: CallbackAccepted): Promise<AsyncCompletion> {
  const { awaitCompletion } = proxyActivities<Activities>({
    // The attempt's `timeout` covers the call and the wait, as it would one slow answer.
    startToCloseTimeout: Math.max(1_000, input.timeoutSeconds * 1000 - outcome.elapsedMs),
    // Nothing runs for it: no heartbeats, no retries; the callee's answer or the timeout ends it.
    retry: { maximumAttempts: 1 },
    // Nothing to abort: a cancel ends the wait at once.
    cancellationType: ActivityCancellationType.TRY_CANCEL,
  });
  return awaitCompletion({ taskId: input.id, attempt: outcome.attempt });
}
