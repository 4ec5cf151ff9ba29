/**
 * The benchmark's baseline workflow: the same shape as `taskWorkflow` (two activities in sequence
 * with the same kind of timeouts and retry policies, the TaskStatus search attribute and the task
 * memo upserted as the task's status changes) but with no-op activities and no API in front.
 * The benchmark (baseline.ts beside this file) runs it on its own task queue with an in-process
 * worker to measure what the Temporal server on this machine can do by itself, so AsyncQueue's
 * limit can be stated as a share of the engine's. Bundled through `workflowsPath`
 * (dist/tools/bench/targets/baseline-workflow.js), so it imports only deterministic modules.
 */
import { ActivityCancellationType, proxyActivities, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import { TASK_MEMO_KEY, TASK_STATUS_SEARCH_ATTRIBUTE } from '../../../workflows/task-contract.js';

export interface BaselineInput {
  id: string;
  /** Carried like a task's payload, so the history holds comparable amounts of data. */
  payload: unknown;
  timeoutSeconds: number;
  retries: number;
  heartbeatTimeoutMs: number;
  retryInitialIntervalMs: number;
  retryMaximumIntervalMs: number;
  webhookTimeoutMs: number;
  webhookRetryInitialIntervalMs: number;
  webhookRetryMaximumIntervalMs: number;
  webhookRetryDurationMs: number;
}

export interface BaselineActivities {
  noopCallback(request: { id: string; payload: unknown }): Promise<{ attempt: number; result: unknown }>;
  noopWebhook(request: { id: string; status: string; result: unknown }): Promise<{ attempt: number; statusCode: number }>;
}

/** Same margin as taskWorkflow's ATTEMPT_TIMEOUT_MARGIN_MS. */
const MARGIN_MS = 5_000;

export async function baselineWorkflow(input: BaselineInput): Promise<{ id: string; status: string; attempts: number }> {
  const memo: Record<string, unknown> = { id: input.id, status: 'pending', attempts: 0 };
  const setStatus = (status: string): void => {
    memo.status = status;
    upsertSearchAttributes([{ key: TASK_STATUS_SEARCH_ATTRIBUTE, value: status === 'pending' ? 'running' : status }]);
    upsertMemo({ [TASK_MEMO_KEY]: { ...memo } });
  };

  const { noopCallback } = proxyActivities<BaselineActivities>({
    startToCloseTimeout: input.timeoutSeconds * 1000 + MARGIN_MS,
    heartbeatTimeout: input.heartbeatTimeoutMs,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      maximumAttempts: input.retries + 1,
      initialInterval: input.retryInitialIntervalMs,
      maximumInterval: input.retryMaximumIntervalMs,
      backoffCoefficient: 2,
    },
  });
  const outcome = await noopCallback({ id: input.id, payload: input.payload });
  memo.attempts = outcome.attempt;
  setStatus('succeeded');

  const { noopWebhook } = proxyActivities<BaselineActivities>({
    startToCloseTimeout: input.webhookTimeoutMs + MARGIN_MS,
    scheduleToCloseTimeout: input.webhookRetryDurationMs,
    heartbeatTimeout: input.heartbeatTimeoutMs,
    retry: {
      initialInterval: input.webhookRetryInitialIntervalMs,
      maximumInterval: input.webhookRetryMaximumIntervalMs,
      backoffCoefficient: 2,
    },
  });
  await noopWebhook({ id: input.id, status: 'succeeded', result: outcome.result });
  upsertMemo({ [TASK_MEMO_KEY]: { ...memo, webhook: { status: 'delivered' } } });
  return { id: input.id, status: 'succeeded', attempts: outcome.attempt };
}
