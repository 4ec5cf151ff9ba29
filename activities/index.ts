/**
 * The task's I/O: the callback call and the webhook delivery. Each attempt is one activity attempt;
 * Temporal's retry policy (declared in the workflow) schedules the next one. Errors become
 * ApplicationFailures whose `nonRetryable` and `nextRetryDelay` encode the CONTRACT's classification.
 */
import { CompleteAsyncError, Context, log } from '@temporalio/activity';
import { CancelledFailure, type ApplicationFailure } from '@temporalio/common';
import type { Dispatcher } from 'undici';
import {
  ASYNC_ACCEPTED_STATUS,
  ASYNC_COMPLETION_HEADER,
  ASYNC_COMPLETION_VALUE,
  CALLBACK_ACTIVITY,
  CallbackErrorType,
  DEFAULT_CALLBACK_METHOD,
  HOLDER_QUEUE_MARK,
  callbackMessageId,
  methodHasBody,
  webhookMessageId,
  workflowIdForTask,
  type AsyncCompletion,
  type AttemptFailureDetails,
  type AwaitCompletionRequest,
  type CallbackMethod,
  type HeldCallRequest,
  type CallbackOutcome,
  type CallbackRequest,
  type JsonValue,
  type WebhookOutcome,
  type WebhookRequest,
} from '../workflows/task-contract.js';
import { CALLBACK_STAGED_ACTIVITY } from '../workflows/staged-attempt-contract.js';
import { createBulkOperationActivities } from './bulk-operation.js';
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
import {
  AttemptClock,
  attemptRecord,
  failAttempt,
  outcomeOfError,
  recordIfWorkerShutdown,
  type AttemptBase,
} from './attempt-records.js';
import { RECORDED_BODY_BYTES, type AttemptRecord } from '../workflows/attempt-record.js';
import type { HeldCalls } from './held-calls.js';
import { heartbeatIntervalMs } from './heartbeats.js';
import { TASK_TOKEN_HEADER, type TaskTokenKeys } from './task-token.js';
import { createFlowControlActivities, withEarlyRelease } from './flow-control.js';
import type { SlotRelay } from './slot-relay.js';
import { createStagedAttempts } from './staged-attempts.js';
import { publishingEndWhenSlow } from './end-publication.js';

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
  /** Staged flow-controlled attempts parked in this worker, handed slots here (slot-relay.ts). */
  slotRelay: SlotRelay;
}

/** A Retry-After beyond this is clamped: a misbehaving server should not park a task for a week. */
const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;
const RETRYABLE_STATUSES = new Set([408, 425, 429]);

export function createActivities(deps: ActivityDependencies) {
  async function send(
    kind: CallKind,
    messageId: string,
    taskId: string,
    url: string,
    body: string | undefined,
    extraHeaders: Record<string, string>,
    timeoutMs: number,
    maxResponseBytes: number,
    attemptOffset = 0,
    method: CallbackMethod = DEFAULT_CALLBACK_METHOD,
  ): Promise<{ attempt: number; response: OutgoingResponse; elapsedMs: number; base: AttemptBase }> {
    const context = Context.current();
    const attempt = attemptOffset + context.info.attempt;
    const base: AttemptBase = { kind, attempt, clock: new AttemptClock() };
    // Heartbeats only tell Temporal this worker is alive (cancels come through abortHeldCall),
    // and each is a server write: none at the start, since most calls end well inside a second.
    const beat = setInterval(() => context.heartbeat({ attempt }), heartbeatIntervalMs(context.info.heartbeatTimeoutMs));
    // A webhook goes out after the outcome is fixed; only a callback is cut off by a cancel.
    const watched = kind === 'callback' ? deps.heldCalls.hold(taskId) : undefined;
    const startedAt = performance.now();
    try {
      const response = await postJson(url, body, {
        method,
        dispatcher: deps.dispatcher,
        timeoutMs,
        signal:
          watched !== undefined ? AbortSignal.any([context.cancellationSignal, watched.signal]) : context.cancellationSignal,
        maxResponseBytes,
        // A webhook's answer is not kept, but its attempt's record shows the start of it.
        keepBytes: RECORDED_BODY_BYTES + 4,
        headers: {
          ...extraHeaders,
          'user-agent': deps.userAgent,
          // Without a body the signature covers the empty string, as Standard Webhooks verifies it.
          ...signatureHeaders(deps.signingKeys, messageId, body ?? ''),
          'asyncqueue-task-id': taskId,
          'asyncqueue-attempt': String(attempt),
        },
      });
      recordCall(kind, startedAt, statusClass(response.statusCode));
      return { attempt, response, elapsedMs: performance.now() - startedAt, base };
    } catch (err) {
      recordCall(kind, startedAt, errorOutcome(err));
      if (watched?.signal.aborted === true && !context.cancellationSignal.aborted) {
        // Cut off by `abortHeldCall` before the SDK heard of the cancel: the SDK would report a
        // CancelledFailure as a retryable failure, so say it is final; the workflow, which
        // accepted the cancel, ends the task as cancelled.
        const error = { code: 'cancelled', message: (err as Error).message };
        throw await failure(CallbackErrorType.CancelRequested, err as Error, attemptRecord(base, 'cancelled', { error }), true);
      }
      if (context.cancellationSignal.aborted) await recordIfWorkerShutdown(base);
      throw await toFailure(err, base);
    } finally {
      clearInterval(beat);
      watched?.release();
    }
  }

  const activities = {
    async callCallback(request: CallbackRequest): Promise<CallbackOutcome> {
      // GET and DELETE carry no body (the API refuses a payload with them); older requests have no method: POST.
      const method = request.method ?? DEFAULT_CALLBACK_METHOD;
      const body = methodHasBody(method) ? JSON.stringify(request.payload) : undefined;
      const { attempt, response, elapsedMs, base } = await send(
        'callback',
        callbackMessageId(request.taskId),
        request.taskId,
        request.url,
        body,
        { ...request.headers, [TASK_TOKEN_HEADER]: deps.taskTokens.tokenFor(request.taskId) },
        request.timeoutMs,
        deps.maxResponseBytes,
        request.attemptOffset,
        method,
      );
      const status = response.statusCode;
      if (status === ASYNC_ACCEPTED_STATUS && asksForAsyncCompletion(response)) {
        // The callee took the work and will report through /complete or /fail; the workflow
        // awaits that in `awaitCompletion`, which holds nothing in this process.
        log.info('callback accepted the work; awaiting its completion', { taskId: request.taskId, attempt });
        const record = attemptRecord(base, 'awaiting_completion', { statusCode: status, response });
        return { kind: 'accepted', attempt, elapsedMs: Math.round(elapsedMs), record };
      }
      if (status >= 200 && status < 300) {
        const result = decodeResult(response) as JsonValue;
        // What Temporal stores is the encoded result: invalid UTF-8 or control characters can
        // make it several times the raw body, so the limit applies to that size.
        const encodedBytes = Buffer.byteLength(JSON.stringify(result));
        if (encodedBytes > deps.maxResponseBytes) {
          const err = new ResponseTooLargeError(deps.maxResponseBytes, encodedBytes);
          const error = { code: 'response_too_large', message: err.message };
          throw await failure(
            CallbackErrorType.ResponseTooLarge,
            err,
            attemptRecord(base, 'failed', { statusCode: status, error, response }),
            true,
          );
        }
        log.info('callback succeeded', { taskId: request.taskId, attempt, statusCode: status });
        const record = attemptRecord(base, 'succeeded', { statusCode: status, response });
        return { kind: 'succeeded', attempt, statusCode: status, result, record };
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
      throw await failAttempt(
        { type: CallbackErrorType.HttpStatus, message, nonRetryable: !retryable, details: [details], ...delay },
        attemptRecord(base, 'failed', { statusCode: status, error: { code: details.code, message }, response }),
      );
    },

    async deliverWebhook(request: WebhookRequest): Promise<WebhookOutcome> {
      const body = JSON.stringify(request.event);
      const { attempt, response, base } = await publishingEndWhenSlow(request, () =>
        send('webhook', webhookMessageId(request.taskId), request.taskId, request.url, body, {}, request.timeoutMs, 0),
      );
      const status = response.statusCode;
      if (status >= 200 && status < 300) {
        log.info('webhook delivered', { taskId: request.taskId, attempt, statusCode: status });
        return { attempt, statusCode: status, record: attemptRecord(base, 'succeeded', { statusCode: status, response }) };
      }
      // 410 Gone is the receiver's way of saying "stop sending"; anything else may heal.
      const details: AttemptFailureDetails = { attempt, statusCode: status, code: 'webhook_http_status' };
      log.warn('webhook attempt failed', { taskId: request.taskId, attempt, statusCode: status });
      const message = `webhook answered ${status}`;
      throw await failAttempt(
        { type: 'WebhookHttpStatus', message, nonRetryable: status === 410, details: [details], ...retryDelay(response) },
        attemptRecord(base, 'failed', { statusCode: status, error: { code: details.code, message }, response }),
      );
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
        (activity) =>
          (activity.activityType?.name === CALLBACK_ACTIVITY || activity.activityType?.name === CALLBACK_STAGED_ACTIVITY) &&
          activity.state === PENDING_ACTIVITY_STARTED,
      );
      const holder = call?.lastWorkerIdentity ?? '';
      log.info('cancel: locating the held call', { taskId: request.taskId, holder });
      return holder.includes(HOLDER_QUEUE_MARK) ? holder : null;
    },

    /** Runs on the holding worker's own task queue: cuts the task's held calls off there. */
    async abortHeldCall(request: HeldCallRequest): Promise<number> {
      return deps.heldCalls.abort(request.taskId);
    },

    // Bulk operations (bulk-operation.ts), through the worker's own client (Context.current().client).
    ...createBulkOperationActivities(),
    ...createFlowControlActivities(deps.slotRelay),
  };
  // A flow-controlled attempt passes its slot on as soon as its call is over (flow-control.ts).
  const callCallback = withEarlyRelease(activities.callCallback, deps.slotRelay);
  return { ...activities, callCallback, ...createStagedAttempts(deps.slotRelay, deps.heldCalls, callCallback) };
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

async function toFailure(err: unknown, base: AttemptBase): Promise<unknown> {
  const record = (code: string): AttemptRecord =>
    attemptRecord(base, outcomeOfError(err), { error: { code, message: (err as Error).message } });
  if (err instanceof RequestTimeoutError) {
    return failure(CallbackErrorType.Timeout, err, record('callback_timeout'), false);
  }
  if (err instanceof ResponseTooLargeError) {
    return failure(CallbackErrorType.ResponseTooLarge, err, record('response_too_large'), true);
  }
  if (err instanceof DestinationBlockedError) {
    return failure(CallbackErrorType.DestinationBlocked, err, record('destination_blocked'), true);
  }
  if (err instanceof NetworkError) {
    return failure(CallbackErrorType.Network, err, record('network_error'), false);
  }
  if (err instanceof RequestAbortedError) {
    // The SDK reports an activity as cancelled (not failed, so no retry) only for a CancelledFailure;
    // its details tell the workflow which attempt was cut off, and carry the attempt's record.
    const details: AttemptFailureDetails = { attempt: base.attempt, code: 'cancelled', record: record('cancelled') };
    return new CancelledFailure(err.message, [details]);
  }
  return err; // the unexpected: the SDK reports it as it is (the attempts list shows its failure)
}

/** A classified failure; its record goes with it or, when Temporal will retry, in a signal. */
async function failure(type: string, err: Error, record: AttemptRecord, nonRetryable: boolean): Promise<ApplicationFailure> {
  const details: AttemptFailureDetails = {
    attempt: record.attempt,
    code: record.error?.code ?? 'failed',
    ...(record.statusCode !== undefined ? { statusCode: record.statusCode } : {}),
  };
  return failAttempt({ type, message: err.message, nonRetryable, details: [details], cause: err }, record);
}
