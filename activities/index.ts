/**
 * The task's I/O: the callback call and the webhook delivery. Each attempt is one activity attempt;
 * Temporal's retry policy (declared in the workflow) schedules the next one. Errors become
 * ApplicationFailures whose `nonRetryable` and `nextRetryDelay` encode the CONTRACT's classification.
 */
import { CompleteAsyncError, Context, log } from '@temporalio/activity';
import { ActivityCancelledError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Dispatcher } from 'undici';
import {
  ASYNC_ACCEPTED_STATUS,
  CallbackErrorType,
  callbackMessageId,
  webhookMessageId,
  type AttemptFailureDetails,
  type CallbackOutcome,
  type CallbackRequest,
  type JsonValue,
  type WebhookOutcome,
  type WebhookRequest,
} from '../workflows/task-contract.js';
import { DestinationBlockedError } from '../src/errors.js';
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
import type { CancelWatch } from './cancel-watch.js';

export interface ActivityDependencies {
  signingKeys: readonly SigningKey[];
  /** Guarded HTTP dispatcher: keep-alive pools per origin, destination checks at connect time. */
  dispatcher: Dispatcher;
  maxResponseBytes: number;
  userAgent: string;
  /** Brings cancels to held callback calls between heartbeats; absent: heartbeats alone do. */
  cancelWatch?: CancelWatch;
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
  ): Promise<{ attempt: number; response: OutgoingResponse }> {
    const context = Context.current();
    const attempt = context.info.attempt;
    // Heartbeats only tell Temporal this worker is alive (cancels come through the cancel watch),
    // and each is a server write: none at the start, since most calls end well inside a second.
    const beat = setInterval(() => context.heartbeat({ attempt }), heartbeatIntervalMs(context.info.heartbeatTimeoutMs));
    // A webhook goes out after the outcome is fixed; only a callback is cut off by a cancel.
    const watched = kind === 'callback' ? deps.cancelWatch?.watch(taskId) : undefined;
    const startedAt = performance.now();
    try {
      const response = await postJson(url, body, {
        dispatcher: deps.dispatcher,
        timeoutMs,
        signal: watched !== undefined ? AbortSignal.any([context.cancellationSignal, watched.signal]) : context.cancellationSignal,
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
      return { attempt, response };
    } catch (err) {
      recordCall(kind, startedAt, errorOutcome(err));
      if (watched?.signal.aborted === true && !context.cancellationSignal.aborted) {
        // Cut off by the cancel watch before the SDK heard of the cancel: the SDK would report a
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

  return {
    async callCallback(request: CallbackRequest): Promise<CallbackOutcome> {
      const body = JSON.stringify(request.payload);
      const { attempt, response } = await send(
        'callback',
        callbackMessageId(request.taskId),
        request.taskId,
        request.url,
        body,
        request.taskToken !== undefined ? { ...request.headers, 'asyncqueue-task-token': request.taskToken } : request.headers,
        request.timeoutMs,
        deps.maxResponseBytes,
      );
      const status = response.statusCode;
      if (status === ASYNC_ACCEPTED_STATUS && request.taskToken !== undefined) {
        // The callee took the work and will report through /complete or /fail: the attempt stays
        // open (Temporal's async completion) until then or until its timeout.
        log.info('callback accepted the work; awaiting its completion', { taskId: request.taskId, attempt });
        keepAliveWhileAwaiting(Context.current(), attempt, Date.now() + request.timeoutMs, deps.cancelWatch?.watch(request.taskId));
        throw new CompleteAsyncError();
      }
      if (status >= 200 && status < 300) {
        log.info('callback succeeded', { taskId: request.taskId, attempt, statusCode: status });
        return { attempt, statusCode: status, result: decodeResult(response) as JsonValue };
      }
      const retryable = status >= 500 || RETRYABLE_STATUSES.has(status);
      const details: AttemptFailureDetails = {
        attempt,
        statusCode: status,
        code: status >= 300 && status < 400 ? 'redirect_not_followed' : 'callback_http_status',
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
        ...retryDelay(response),
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
  };
}

/**
 * An attempt awaiting async completion has no function running to heartbeat for it, so the worker
 * heartbeats on its behalf: if this worker dies the heartbeats stop and Temporal retries the
 * attempt, as for any lost call. A cancel reaches it through the cancel watch within about a
 * second (`watched`), or else in the answer to a heartbeat, and is reported as cancellation.
 * The loop ends when the attempt is completed, failed, timed out or cancelled.
 */
function keepAliveWhileAwaiting(
  context: Context,
  attempt: number,
  deadline: number,
  watched: { signal: AbortSignal; release(): void } | undefined,
): void {
  const { taskToken, heartbeatTimeoutMs } = context.info;
  const client = context.client;
  const intervalMs = heartbeatIntervalMs(heartbeatTimeoutMs);
  let ended = false;
  const reportCancelled = async (): Promise<void> => {
    await client.activity.reportCancellation(taskToken, { attempt, code: 'cancelled' } satisfies AttemptFailureDetails).catch(() => undefined);
  };
  const end = (): void => {
    ended = true;
    watched?.release();
  };
  watched?.signal.addEventListener('abort', () => {
    if (ended) return;
    end();
    void reportCancelled();
  });
  const beat = async (): Promise<void> => {
    if (ended) return;
    try {
      if (Date.now() >= deadline) {
        // The attempt's `timeout` covers the whole wait, as it would a slow synchronous answer.
        const details: AttemptFailureDetails = { attempt, code: 'callback_timeout' };
        const message = 'no /complete or /fail within the attempt timeout';
        end();
        await client.activity.fail(taskToken, ApplicationFailure.create({ type: CallbackErrorType.Timeout, message, details: [details] }));
        return;
      }
      await client.activity.heartbeat(taskToken, { attempt, awaitingCompletion: true });
    } catch (err) {
      if (ended) return;
      end();
      if (err instanceof ActivityCancelledError) await reportCancelled();
      return; // completed, failed, timed out (not found) or cancelled: nothing left to keep alive
    }
    setTimeout(() => void beat(), Math.min(intervalMs, Math.max(0, deadline - Date.now()))).unref();
  };
  setTimeout(() => void beat(), Math.min(intervalMs, Math.max(0, deadline - Date.now()))).unref();
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
