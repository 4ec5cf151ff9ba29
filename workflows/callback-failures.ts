/**
 * How the task workflow reads a failed callback attempt: which attempt it was, what the app sees,
 * whether another may follow and after how long. Shared by the retry-policy path
 * (task-workflow.ts) and the flow-controlled one (flow-controlled-callback.ts).
 */
import { ActivityFailure, ApplicationFailure, CancelledFailure, TimeoutFailure } from '@temporalio/workflow';
import type { AttemptFailureDetails, TaskError, TaskPolicy } from './task-contract.js';

export const BACKOFF_COEFFICIENT = 2;

/** The wait before the attempt after `attemptsMade`, as Temporal's retry policy would wait. */
export function backoffMs(policy: TaskPolicy, attemptsMade: number): number {
  return Math.min(policy.retryInitialIntervalMs * BACKOFF_COEFFICIENT ** (attemptsMade - 1), policy.retryMaximumIntervalMs);
}

/**
 * The callee's `Retry-After`, which the activity put in the failure's details (the SDK decodes a
 * failure without its `nextRetryDelay`).
 */
export function retryAfterMs(err: ActivityFailure): number | undefined {
  const delay = failureDetails(err)?.retryAfterMs;
  return typeof delay === 'number' ? delay : undefined;
}

/** A `/fail` with `retryable: false` is final; a timeout or any other failure may heal. */
export function retryableAsyncFailure(err: ActivityFailure): boolean {
  const cause = err.cause;
  if (cause instanceof ApplicationFailure) return !cause.nonRetryable;
  return cause instanceof TimeoutFailure;
}

export function failureDetails(err: unknown): AttemptFailureDetails | undefined {
  if (!(err instanceof ActivityFailure)) return undefined;
  const cause = err.cause;
  if (cause instanceof ApplicationFailure) return cause.details?.[0] as AttemptFailureDetails | undefined;
  if (cause instanceof TimeoutFailure) return cause.lastHeartbeatDetails as AttemptFailureDetails | undefined;
  if (cause instanceof CancelledFailure) return cause.details?.[0] as AttemptFailureDetails | undefined;
  return undefined;
}

export function attemptFromFailure(err: unknown): number | undefined {
  const attempt = failureDetails(err)?.attempt;
  return typeof attempt === 'number' ? attempt : undefined;
}

export function taskErrorFromFailure(err: ActivityFailure): TaskError {
  const cause = err.cause;
  const details = failureDetails(err);
  if (cause instanceof TimeoutFailure) {
    return { code: 'callback_timeout', message: `callback attempt timed out (${cause.timeoutType ?? 'timeout'})` };
  }
  return {
    code: details?.code ?? 'callback_failed',
    message: cause?.message ?? err.message,
    ...(details?.statusCode !== undefined ? { statusCode: details.statusCode } : {}),
  };
}
