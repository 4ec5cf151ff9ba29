/**
 * The base of every AsyncQueue error, and the errors the activities' own I/O raises. Here, at the
 * bottom of the dependency order (workflows <- activities <- src), so that the activities import
 * nothing from src/; src/errors.ts re-exports these and adds the API's.
 * Errors are classes with stable codes; tests assert on classes and codes, never on message text.
 */
export abstract class AsyncQueueError extends Error {
  abstract readonly code: string;
  /** HTTP status the API answers with when this error reaches a client. */
  readonly statusCode: number = 500;
  /** Seconds after which a retry may succeed (sent as `Retry-After` on 429 and 503). */
  readonly retryAfterSeconds: number | undefined = undefined;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A callback or webhook URL points where the configuration does not allow requests to go. */
export class DestinationBlockedError extends AsyncQueueError {
  readonly code = 'destination_blocked';
  override readonly statusCode = 400;
  constructor(
    readonly host: string,
    message: string,
  ) {
    super(message);
  }
}

/** A configuration variable is missing or malformed; the message names the variable. */
export class ConfigError extends AsyncQueueError {
  readonly code = 'invalid_config';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}
