/**
 * The task's I/O: the callback call and the webhook delivery. Each attempt is one activity attempt;
 * Temporal's retry policy (declared in the workflow) schedules the next one. Errors become
 * ApplicationFailures whose `nonRetryable` and `nextRetryDelay` encode the CONTRACT's classification.
 */
import { CompleteAsyncError, Context, log } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Dispatcher } from 'undici';
import {
  ASYNC_ACCEPTED_STATUS,
  ASYNC_COMPLETION_HEADER,
  ASYNC_COMPLETION_VALUE,
  CALLBACK_ACTIVITY,
  CallbackErrorType,
  HOLDER_QUEUE_MARK,
  callbackMessageId,
  webhookMessageId,
  workflowIdForTask,
  type AsyncCompletion,
  type AttemptFailureDetails,
  type AwaitCompletionRequest,
  type HeldCallRequest,
  type CallbackOutcome,
  type CallbackRequest,
  type JsonValue,
  type WebhookOutcome,
  type WebhookRequest,
} from '../workflows/task-contract.js';
import { DestinationBlockedError } from './errors.js';
import {
  NetworkError,
  RequestAbortedError,
  RequestTimeoutError,
  ResponseTooLargeError,
  decodeResult,
  parseRetryAfter,
  postJson,
  type OutgoingResponse,
} from './outgoing-request.js';
import { signatureHeaders, type SigningKey } from './webhook-signature.js';
import type { HeldCalls } from './held-calls.js';
import { TASK_TOKEN_HEADER, type TaskTokenKeys } from './task-token.js';
import { flowControlActivities, withEarlyRelease } from './flow-control.js';

export interface ActivityDependencies {
  signingKeys: readonly SigningKey[];
  /** Derives the `AsyncQueue-Task-Token` each callback request carries. */
  taskTokens: TaskTokenKeys;
  /** Guarded HTTP dispatcher: keep-alive pools per origin, destination checks at connect time. */
  dispatcher: Dispatcher;
  maxResponseBytes: number;
  userAgent: string;
  /** The callback calls this worker holds, for a cancel to cut off at once (`abortHeldCall`). */
  heldCalls: HeldCalls;
}

/** A Retry-After beyond this is clamped: a misbehaving server should not park a task for a week. */
const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;
const RETRYABLE_STATUSES = new Set([408, 425, 429]);

/**
 * How often an attempt reports that its worker is alive: at 40 % of the heartbeat timeout, well
 * inside it (the SDK sends at most one per 80 % of it anyway). The workflow always sets a
 * timeout; without one, nothing times out and the beats are harmless.
 */
function heartbeatIntervalMs(heartbeatTimeoutMs: number | undefined): number {
  return Math.max(100, 0.4 * (heartbeatTimeoutMs ?? 30_000));
}

export function createActivities(deps: ActivityDependencies) {
  async function send(
    kind: CallKind,
    messageId: string,
    taskId: string,
    url: string,
    body: string,
    extraHeaders: Record<string, string>,
    timeoutMs: number,
    maxResponseBytes: number,
    attemptOffset = 0,
  ): Promise<{ attempt: number; response: OutgoingResponse; elapsedMs: number }> {
    const context = Context.current();
    const attempt = attemptOffset + context.info.attempt;
    // Heartbeats only tell Temporal this worker is alive (cancels come through abortHeldCall),
    // and each is a server write: none at the start, since most calls end well inside a second.
    const beat = setInterval(() => context.heartbeat({ attempt }), heartbeatIntervalMs(context.info.heartbeatTimeoutMs));
    // A webhook goes out after the outcome is fixed; only a callback is cut off by a cancel.
    const watched = kind === 'callback' ? deps.heldCalls.hold(taskId) : undefined;
    const startedAt = performance.now();
    try {
      const response = await postJson(url, body, {
        dispatcher: deps.dispatcher,
        timeoutMs,
        signal:
          watched !== undefined ? AbortSignal.any([context.cancellationSignal, watched.signal]) : context.cancellationSignal,
        maxResponseBytes,
        headers: {
          ...extraHeaders,
          'user-agent': deps.userAgent,
          ...signatureHeaders(deps.signingKeys, messageId, body),
          'asyncqueue-task-id': taskId,
          'asyncqueue-attempt': String(attempt),
        },
      });
      recordCall(kind, startedAt, statusClass(response.statusCode));
      return { attempt, response, elapsedMs: performance.now() - startedAt };
    } catch (err) {
      recordCall(kind, startedAt, errorOutcome(err));
      if (watched?.signal.aborted === true && !context.cancellationSignal.aborted) {
        // Cut off by `abortHeldCall` before the SDK heard of the cancel: the SDK would report a
        // CancelledFailure as a retryable failure, so say it is final; the workflow, which
        // accepted the cancel, ends the task as cancelled.
        throw failure(CallbackErrorType.CancelRequested, err as Error, { attempt, code: 'cancelled' }, true);
      }
      throw toFailure(err, attempt);
    } finally {
      clearInterval(beat);
      watched?.release();
    }
  }

  const activities = {
    async callCallback(request: CallbackRequest): Promise<CallbackOutcome> {
      const body = JSON.stringify(request.payload);
      const { attempt, response, elapsedMs } = await send(
        'callback',
        callbackMessageId(request.taskId),
        request.taskId,
        request.url,
        body,
        { ...request.headers, [TASK_TOKEN_HEADER]: deps.taskTokens.tokenFor(request.taskId) },
        request.timeoutMs,
        deps.maxResponseBytes,
        request.attemptOffset,
      );
      const status = response.statusCode;
      if (status === ASYNC_ACCEPTED_STATUS && asksForAsyncCompletion(response)) {
        // The callee took the work and will report through /complete or /fail; the workflow
        // awaits that in `awaitCompletion`, which holds nothing in this process.
        log.info('callback accepted the work; awaiting its completion', { taskId: request.taskId, attempt });
        return { kind: 'accepted', attempt, elapsedMs: Math.round(elapsedMs) };
      }
      if (status >= 200 && status < 300) {
        const result = decodeResult(response) as JsonValue;
        // What Temporal stores is the encoded result: invalid UTF-8 or control characters can
        // make it several times the raw body, so the limit applies to that size.
        const encodedBytes = Buffer.byteLength(JSON.stringify(result));
        if (encodedBytes > deps.maxResponseBytes) {
          throw failure(
            CallbackErrorType.ResponseTooLarge,
            new ResponseTooLargeError(deps.maxResponseBytes, encodedBytes),
            { attempt, statusCode: status, code: 'response_too_large' },
            true,
          );
        }
        log.info('callback succeeded', { taskId: request.taskId, attempt, statusCode: status });
        return { kind: 'succeeded', attempt, statusCode: status, result };
      }
      const retryable = status >= 500 || RETRYABLE_STATUSES.has(status);
      const delay = retryDelay(response);
      const details: AttemptFailureDetails = {
        attempt,
        statusCode: status,
        code: status >= 300 && status < 400 ? 'redirect_not_followed' : 'callback_http_status',
        // Also here: the workflow SDK drops `nextRetryDelay` when it decodes a failure, and a
        // flow-controlled task does its own backoff (workflows/flow-controlled-callback.ts).
        ...(delay.nextRetryDelay !== undefined ? { retryAfterMs: delay.nextRetryDelay } : {}),
      };
      const message =
        status >= 300 && status < 400
          ? `callback answered ${status} (redirects are not followed)`
          : `callback answered ${status}`;
      log.warn('callback attempt failed', { taskId: request.taskId, attempt, statusCode: status, retryable });
      throw ApplicationFailure.create({
        type: CallbackErrorType.HttpStatus,
        message,
        nonRetryable: !retryable,
        details: [details],
        ...delay,
      });
    },

    async deliverWebhook(request: WebhookRequest): Promise<WebhookOutcome> {
      const body = JSON.stringify(request.event);
      const { attempt, response } = await send(
        'webhook',
        webhookMessageId(request.taskId),
        request.taskId,
        request.url,
        body,
        {},
        request.timeoutMs,
        0,
      );
      const status = response.statusCode;
      if (status >= 200 && status < 300) {
        log.info('webhook delivered', { taskId: request.taskId, attempt, statusCode: status });
        return { attempt, statusCode: status };
      }
      // 410 Gone is the receiver's way of saying "stop sending"; anything else may heal.
      const details: AttemptFailureDetails = { attempt, statusCode: status, code: 'webhook_http_status' };
      log.warn('webhook attempt failed', { taskId: request.taskId, attempt, statusCode: status });
      throw ApplicationFailure.create({
        type: 'WebhookHttpStatus',
        message: `webhook answered ${status}`,
        nonRetryable: status === 410,
        details: [details],
        ...retryDelay(response),
      });
    },

    /**
     * The wait for a callee that answered `202` + `AsyncQueue-Completion: async`. Completed
     * asynchronously at once: the attempt stays open on the server alone, with no heartbeat and
     * no worker slot, until the API completes or fails it by id (`/complete`, `/fail`), its
     * start-to-close timeout (the attempt's `timeout`) fires, or a cancel ends the wait. So a
     * worker restart, graceful or not, changes nothing for it.
     */
    async awaitCompletion(_request: AwaitCompletionRequest): Promise<AsyncCompletion> {
      throw new CompleteAsyncError();
    },

    /**
     * Local activity of a task whose cancel was accepted while its call was in flight: which
     * worker holds the call, as the server's pending-activity state says; its task queue, or
     * null when no attempt is running (or its worker is not one of ours).
     */
    async locateHeldCall(request: HeldCallRequest): Promise<string | null> {
      const description = await Context.current().client.workflow.getHandle(workflowIdForTask(request.taskId)).describe();
      const call = (description.raw.pendingActivities ?? []).find(
        (activity) => activity.activityType?.name === CALLBACK_ACTIVITY && activity.state === PENDING_ACTIVITY_STARTED,
      );
      const holder = call?.lastWorkerIdentity ?? '';
      log.info('cancel: locating the held call', { taskId: request.taskId, holder });
      return holder.includes(HOLDER_QUEUE_MARK) ? holder : null;
    },

    /** Runs on the holding worker's own task queue: cuts the task's held calls off there. */
    async abortHeldCall(request: HeldCallRequest): Promise<number> {
      return deps.heldCalls.abort(request.taskId);
    },

    ...flowControlActivities,
  };
  // A flow-controlled attempt gives its slot back as soon as its call is over (flow-control.ts).
  return { ...activities, callCallback: withEarlyRelease(activities.callCallback) };
}

/** `PendingActivityState.PENDING_ACTIVITY_STATE_STARTED` (temporal.api.enums.v1). */
const PENDING_ACTIVITY_STARTED = 2;

function asksForAsyncCompletion(response: OutgoingResponse): boolean {
  const value = response.headers[ASYNC_COMPLETION_HEADER];
  const first = Array.isArray(value) ? value[0] : value;
  return first?.trim().toLowerCase() === ASYNC_COMPLETION_VALUE;
}

type CallKind = 'callback' | 'webhook';

/**
 * Latency and outcome of every call, by status class, on the SDK's metric meter: exported with the
 * worker's Temporal metrics (`asyncqueue_callback_duration_seconds{outcome="5xx"}`, …).
 */
function recordCall(kind: CallKind, startedAt: number, outcome: string): void {
  Context.current()
    .metricMeter.createHistogram(`asyncqueue_${kind}_duration`, 'float', 'seconds', `${kind} request latency by outcome`)
    .record((performance.now() - startedAt) / 1000, { outcome });
}

function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}

function errorOutcome(err: unknown): string {
  if (err instanceof RequestTimeoutError) return 'timeout';
  if (err instanceof ResponseTooLargeError) return 'too_large';
  if (err instanceof DestinationBlockedError) return 'blocked';
  if (err instanceof RequestAbortedError) return 'cancelled';
  return 'network_error';
}

function retryDelay(response: OutgoingResponse): { nextRetryDelay?: number } {
  const delay = parseRetryAfter(response.headers['retry-after']);
  return delay === undefined ? {} : { nextRetryDelay: Math.min(delay, MAX_RETRY_AFTER_MS) };
}

function toFailure(err: unknown, attempt: number): unknown {
  if (err instanceof RequestTimeoutError) {
    return failure(CallbackErrorType.Timeout, err, { attempt, code: 'callback_timeout' }, false);
  }
  if (err instanceof ResponseTooLargeError) {
    return failure(CallbackErrorType.ResponseTooLarge, err, { attempt, code: 'response_too_large' }, true);
  }
  if (err instanceof DestinationBlockedError) {
    return failure(CallbackErrorType.DestinationBlocked, err, { attempt, code: 'destination_blocked' }, true);
  }
  if (err instanceof NetworkError) {
    return failure(CallbackErrorType.Network, err, { attempt, code: 'network_error' }, false);
  }
  if (err instanceof RequestAbortedError) {
    // The SDK reports an activity as cancelled (not failed, so no retry) only for a CancelledFailure;
    // its details tell the workflow which attempt was cut off.
    return new CancelledFailure(err.message, [{ attempt, code: 'cancelled' } satisfies AttemptFailureDetails]);
  }
  return err; // the unexpected: the SDK reports it as it is
}

function failure(type: string, err: Error, details: AttemptFailureDetails, nonRetryable: boolean): ApplicationFailure {
  return ApplicationFailure.create({ type, message: err.message, nonRetryable, details: [details], cause: err });
}
