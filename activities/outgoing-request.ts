/**
 * One outgoing POST: signed, size-capped, aborted on timeout or cancellation, never redirected.
 * Knows nothing about Temporal; the activities translate its errors into retry decisions.
 */
import { request, type Dispatcher } from 'undici';
import { AsyncQueueError, DestinationBlockedError } from '../src/errors.js';

export interface OutgoingResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  contentType: string | undefined;
  body: Buffer;
}

export interface PostOptions {
  dispatcher: Dispatcher;
  headers: Record<string, string>;
  timeoutMs: number;
  /** Aborts the request when the task is cancelled. */
  signal: AbortSignal;
  /** Bodies above this fail the request; 0 discards the body unread (webhook answers carry nothing we keep). */
  maxResponseBytes: number;
}

export class RequestTimeoutError extends AsyncQueueError {
  readonly code = 'timeout';
  constructor(readonly timeoutMs: number) {
    super(`no complete response within ${timeoutMs / 1000} s`);
  }
}

export class ResponseTooLargeError extends AsyncQueueError {
  readonly code = 'response_too_large';
  constructor(
    readonly limitBytes: number,
    /** Set when the raw body fit but its encoding as the task's result does not. */
    readonly encodedBytes?: number,
  ) {
    super(
      encodedBytes === undefined
        ? `response body is larger than the ${limitBytes}-byte limit`
        : `response body encodes to ${encodedBytes} bytes as the task's result, over the ${limitBytes}-byte limit`,
    );
  }
}

export class NetworkError extends AsyncQueueError {
  readonly code = 'network_error';
}

export class RequestAbortedError extends AsyncQueueError {
  readonly code = 'aborted';
}

export async function postJson(url: string, body: string, options: PostOptions): Promise<OutgoingResponse> {
  // One controller per request, disarmed in `finally`: undici keeps listening to the signal while
  // a response body is alive, and an abort after we are done would surface as an uncaught error.
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  const onCancel = (): void => controller.abort();
  options.signal.addEventListener('abort', onCancel, { once: true });
  if (options.signal.aborted) controller.abort();
  try {
    const response = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...options.headers },
      body,
      signal: controller.signal,
      dispatcher: options.dispatcher,
    });
    const contentType = response.headers['content-type'];
    const base = {
      statusCode: response.statusCode,
      headers: response.headers,
      contentType: Array.isArray(contentType) ? contentType[0] : contentType,
    };
    if (options.maxResponseBytes === 0) {
      await response.body.dump();
      return { ...base, body: Buffer.alloc(0) };
    }
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > options.maxResponseBytes) {
      await response.body.dump();
      throw new ResponseTooLargeError(options.maxResponseBytes);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      const buffer = chunk as Buffer;
      size += buffer.length;
      if (size > options.maxResponseBytes) {
        await response.body.dump();
        throw new ResponseTooLargeError(options.maxResponseBytes);
      }
      chunks.push(buffer);
    }
    return { ...base, body: Buffer.concat(chunks) };
  } catch (err) {
    if (err instanceof ResponseTooLargeError) throw err;
    const blocked = findCause(err, DestinationBlockedError);
    if (blocked !== undefined) throw blocked;
    if (options.signal.aborted) throw new RequestAbortedError('request aborted: the task was cancelled', { cause: err });
    if (timedOut) throw new RequestTimeoutError(options.timeoutMs);
    const message = err instanceof Error ? describeNetworkError(err) : String(err);
    throw new NetworkError(message, { cause: err });
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', onCancel);
  }
}

function findCause<T extends Error>(err: unknown, type: new (...args: never[]) => T): T | undefined {
  for (let current: unknown = err, depth = 0; current instanceof Error && depth < 5; depth++) {
    if (current instanceof type) return current;
    current = current.cause;
  }
  return undefined;
}

function describeNetworkError(err: Error): string {
  const code = (err as { code?: unknown }).code ?? (err.cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
}

/** `Retry-After` as milliseconds from now: delta-seconds or an HTTP date; undefined when absent or malformed. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return undefined;
  const trimmed = raw.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** The response body as the task's result: parsed when JSON, text otherwise, null when empty. */
export function decodeResult(response: OutgoingResponse): unknown {
  if (response.body.length === 0) return null;
  const text = response.body.toString('utf8');
  if (response.contentType !== undefined && /[/+]json\b/i.test(response.contentType)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text; // a mislabelled body is still the callback's answer; keep it verbatim
    }
  }
  return text;
}
