/**
 * The benchmark's baseline: the minimal raw-Temporal job that does what an AsyncQueue task does.
 * One activity POSTs the callback, one POSTs the webhook — real HTTP requests to the same bench
 * receivers, with the timeouts and retry policies AsyncQueue gives them (taskWorkflow's) — and
 * nothing else: no memo, no search attributes, no status updates, no signals, no API in front.
 * (AsyncQueue's heartbeat timeout, which finds the calls of a worker that died, is not part of
 * the minimal job; with callbacks that answer within a second AsyncQueue sends no heartbeat either.)
 * The benchmark (baseline.ts beside this file) starts it with a plain client on a task queue of
 * its own, so AsyncQueue's throughput and latency can be stated against it. Bundled through
 * `workflowsPath` (dist/tools/bench/targets/baseline-workflow.js), so it imports only
 * deterministic modules.
 */
import { proxyActivities } from '@temporalio/workflow';

export interface BaselineInput {
  id: string;
  callbackUrl: string;
  webhookUrl: string;
  /** Carried like a task's payload, so the history holds comparable amounts of data. */
  payload: unknown;
  timeoutSeconds: number;
  retries: number;
  retryInitialIntervalMs: number;
  retryMaximumIntervalMs: number;
  webhookTimeoutMs: number;
  webhookRetryInitialIntervalMs: number;
  webhookRetryMaximumIntervalMs: number;
  webhookRetryDurationMs: number;
}

export interface BaselineActivities {
  /** POSTs `payload` to `url`; a non-2xx answer or a timeout fails the attempt. Returns the answer's JSON. */
  postCallback(request: { id: string; url: string; payload: unknown; timeoutMs: number }): Promise<unknown>;
  /** POSTs `{ taskId, status, result }` to `url`, as AsyncQueue's webhook carries them. */
  postWebhook(request: {
    url: string;
    timeoutMs: number;
    event: { taskId: string; status: string; result: unknown };
  }): Promise<void>;
}

/** taskWorkflow's ATTEMPT_TIMEOUT_MARGIN_MS and BACKOFF_COEFFICIENT. */
const MARGIN_MS = 5_000;
const BACKOFF_COEFFICIENT = 2;

export async function baselineWorkflow(input: BaselineInput): Promise<void> {
  const { postCallback } = proxyActivities<BaselineActivities>({
    startToCloseTimeout: input.timeoutSeconds * 1000 + MARGIN_MS,
    retry: {
      maximumAttempts: input.retries + 1,
      initialInterval: input.retryInitialIntervalMs,
      maximumInterval: input.retryMaximumIntervalMs,
      backoffCoefficient: BACKOFF_COEFFICIENT,
    },
  });
  const result = await postCallback({
    id: input.id,
    url: input.callbackUrl,
    payload: input.payload,
    timeoutMs: input.timeoutSeconds * 1000,
  });

  const { postWebhook } = proxyActivities<BaselineActivities>({
    startToCloseTimeout: input.webhookTimeoutMs + MARGIN_MS,
    scheduleToCloseTimeout: input.webhookRetryDurationMs,
    retry: {
      initialInterval: input.webhookRetryInitialIntervalMs,
      maximumInterval: input.webhookRetryMaximumIntervalMs,
      backoffCoefficient: BACKOFF_COEFFICIENT,
    },
  });
  await postWebhook({
    url: input.webhookUrl,
    timeoutMs: input.webhookTimeoutMs,
    event: { taskId: input.id, status: 'succeeded', result },
  });
}
