/** Errors the client SDK throws: one class per condition, each carrying what a caller branches on. */

/** The API answered with an error (`{ error: { code, message } }`). */
export class AsyncQueueApiError extends Error {
  constructor(
    /** HTTP status, e.g. 400, 404, 409, 429, 503. */
    readonly status: number,
    /** Stable machine-readable code, e.g. `invalid_request`, `task_not_found`. */
    readonly code: string,
    message: string,
    /** Seconds the API asked to wait before retrying (429 and 503). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'AsyncQueueApiError';
  }
}

/** The API could not be reached (connection refused, reset, DNS, timeout). */
export class AsyncQueueConnectionError extends Error {
  readonly code = 'connection_error';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AsyncQueueConnectionError';
  }
}

/** `tasks.wait` gave up before the task ended. */
export class WaitTimeoutError extends Error {
  readonly code = 'wait_timeout';
  constructor(
    readonly taskId: string,
    readonly lastStatus: string,
  ) {
    super(`task ${taskId} had not ended when the wait timed out (last status: ${lastStatus})`);
    this.name = 'WaitTimeoutError';
  }
}

/** A request claiming to come from AsyncQueue did not carry a valid signature. */
export class SignatureVerificationError extends Error {
  readonly code = 'invalid_signature';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SignatureVerificationError';
  }
}
