/**
 * Errors as classes with stable codes. The API maps `statusCode` and `code` onto its error body;
 * tests assert on classes and codes, never on message text.
 */
export { AsyncQueueError, ConfigError, DestinationBlockedError } from '../../activities/errors.js';
import { AsyncQueueError } from '../../activities/errors.js';

/** A request field failed validation; the message names the field. */
export class ValidationError extends AsyncQueueError {
  readonly code = 'invalid_request';
  override readonly statusCode = 400;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

export class UnauthorizedError extends AsyncQueueError {
  readonly code = 'unauthorized';
  override readonly statusCode = 401;
}

export class TaskNotFoundError extends AsyncQueueError {
  readonly code = 'task_not_found';
  override readonly statusCode = 404;
  constructor(readonly taskId: string) {
    super(`task ${taskId} not found`);
  }
}

export class FlowKeyNotFoundError extends AsyncQueueError {
  readonly code = 'flow_control_key_not_found';
  override readonly statusCode = 404;
  constructor(readonly key: string) {
    super(`flow-control key ${key} not found: no task or PUT has named it`);
  }
}

export class TaskAlreadyEndedError extends AsyncQueueError {
  readonly code = 'task_already_ended';
  override readonly statusCode = 409;
  constructor(
    readonly taskId: string,
    readonly status: string,
  ) {
    super(`task ${taskId} has already ended (${status})`);
  }
}

/** A replay of a task that is still running: only an ended task can be replayed. */
export class TaskNotEndedError extends AsyncQueueError {
  readonly code = 'task_not_ended';
  override readonly statusCode = 409;
  constructor(readonly taskId: string) {
    super(`task ${taskId} has not ended; replay it once it has (or cancel it first)`);
  }
}

/** `/complete` or `/fail` for a task whose callback attempt is not in progress. */
export class NotAwaitingCompletionError extends AsyncQueueError {
  readonly code = 'not_awaiting_completion';
  override readonly statusCode = 409;
  constructor(readonly taskId: string) {
    super(`task ${taskId} has no callback attempt in progress to complete`);
  }
}

/**
 * `/complete` or `/fail` arrived while the attempt's wait for completion is still being set up
 * (after the callee's `202`, before the workflow took it in: seconds when a worker died mid-way).
 */
export class CompletionNotReadyError extends AsyncQueueError {
  readonly code = 'completion_not_ready';
  override readonly statusCode = 503;
  override readonly retryAfterSeconds = 1;
  constructor(readonly taskId: string) {
    super(`task ${taskId} is not awaiting completion yet; retry shortly`);
  }
}

/** Temporal could not be reached in time; the request can be retried. */
export class TemporalUnavailableError extends AsyncQueueError {
  readonly code = 'temporal_unavailable';
  override readonly statusCode = 503;
  override readonly retryAfterSeconds: number;
  constructor(message: string, options?: ErrorOptions & { retryAfterSeconds?: number }) {
    super(message, options);
    this.retryAfterSeconds = options?.retryAfterSeconds ?? 5;
  }
}

/**
 * Temporal answered with an internal failure (its database away, a shard moving): retryable, and
 * not a sign that Temporal is unreachable, so it does not make the API fail fast.
 */
export class TemporalFailedError extends AsyncQueueError {
  readonly code = 'temporal_unavailable';
  override readonly statusCode = 503;
  override readonly retryAfterSeconds = 1;
}

/** Temporal answered, but refused the call under its rate limits (RESOURCE_EXHAUSTED). */
export class TemporalThrottledError extends AsyncQueueError {
  readonly code = 'temporal_throttled';
  override readonly statusCode = 503;
  override readonly retryAfterSeconds = 1;
}

/** A value is larger than what Temporal stores (its payload size limit); the message names it. */
export class PayloadTooLargeError extends AsyncQueueError {
  readonly code = 'payload_too_large';
  override readonly statusCode = 413;
  constructor(
    readonly field: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${field}: ${message}`, options);
  }
}

/** This caller sent more requests than its rate limit allows. */
export class RateLimitedError extends AsyncQueueError {
  readonly code = 'rate_limited';
  override readonly statusCode = 429;
  constructor(override readonly retryAfterSeconds: number) {
    super(`rate limit exceeded; retry in ${retryAfterSeconds} s`);
  }
}

/** The API process is overloaded (event loop lagging); shedding load keeps accepted requests fast. */
export class OverloadedError extends AsyncQueueError {
  readonly code = 'overloaded';
  override readonly statusCode = 503;
  constructor(override readonly retryAfterSeconds: number) {
    super('the service is overloaded; retry shortly');
  }
}
