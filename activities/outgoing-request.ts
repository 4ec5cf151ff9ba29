/**
 * One outgoing request (a webhook's POST, a callback's POST/PUT/PATCH/GET/DELETE): signed, size-capped, aborted on timeout or cancellation, never redirected.
 * Knows nothing about Temporal; the activities translate its errors into retry decisions.
 */
import { request, type Dispatcher } from 'undici';
import { AsyncQueueError, DestinationBlockedError } from './errors.js';

export interface OutgoingResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  contentType: string | undefined;
  body: Buffer;
  /** With `keepBytes`: the body was longer than what was kept. */
  bodyTruncated?: boolean;
}

export interface PostOptions {
  /** Default `POST`. */
  method?: 'POST' | 'PUT' | 'PATCH' | 'GET' | 'DELETE';
  dispatcher: Dispatcher;
  headers: Record<string, string>;
  timeoutMs: number;
  /** Aborts the request when the task is cancelled. */
  signal: AbortSignal;
  /** Bodies above this fail the request; 0 discards the body unread (webhook answers carry nothing we keep). */
  maxResponseBytes: number;
  /** With `maxResponseBytes` 0: keep this much of the body (for the attempt's record), skip the rest. */
  keepBytes?: number;
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

/** `body` undefined sends none and no Content-Type (a callback's GET or DELETE). */
export async function postJson(url: string, body: string | undefined, options: PostOptions): Promise<OutgoingResponse> {
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
      method: options.method ?? 'POST',
      headers: body === undefined ? options.headers : { 'content-type': 'application/json', ...options.headers },
      ...(body === undefined ? {} : { body }),
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
      const keep = options.keepBytes ?? 0;
      const kept: Buffer[] = [];
      let keptBytes = 0;
      let bodyTruncated = false;
      if (keep > 0) {
        for await (const chunk of response.body) {
          kept.push(chunk as Buffer);
          keptBytes += (chunk as Buffer).length;
          if (keptBytes > keep) {
            bodyTruncated = true;
            break; // ends the stream: the rest is not read
          }
        }
      }
      await response.body.dump().catch(() => undefined);
      // Up to one chunk past `keep`: whoever keeps `keep` bytes can cut at a character boundary.
      return { ...base, body: Buffer.concat(kept), ...(bodyTruncated ? { bodyTruncated } : {}) };
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

/**
 * `Retry-After` (RFC 9110 §10.2.3) as milliseconds from now, or undefined when it should not steer
 * the retry: absent, malformed, or asking for no wait at all.
 *
 * Only the two forms the RFC defines count: delta-seconds (`^\d+$`) and an HTTP-date (§5.6.7:
 * IMF-fixdate, or the obsolete RFC 850 and asctime forms, which recipients must accept). Anything
 * else is ignored rather than guessed at: `Date.parse` reads "1.5" as a date in 2001, which made a
 * "wait a second and a half" end the task.
 *
 * Zero, or a date that is not in the future, yields undefined too, so the retry policy's own
 * backoff applies. Temporal reads a `nextRetryDelay` of 0 as "no further retry" (the attempt ends
 * with retry state TIMEOUT: the task failed with retries left), and a tiny positive delay would let
 * a callee that always answers `Retry-After: 0` spend every retry in one burst; the backoff is
 * the floor that protects it.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return undefined;
  const trimmed = raw.trim();
  const delayMs = /^\d+$/.test(trimmed) ? Number(trimmed) * 1000 : parseHttpDate(trimmed, now) - now;
  return delayMs > 0 ? delayMs : undefined; // NaN (not a date) fails this too
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
/** `Sun, 06 Nov 1994 08:49:37 GMT` */
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
/** `Sunday, 06-Nov-94 08:49:37 GMT` */
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
/** `Sun Nov  6 08:49:37 1994` (a single-digit day is space-padded) */
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ( \\d|\\d{2}) ${TIME} (\\d{4})$`);

/** An HTTP-date (RFC 9110 §5.6.7, case-sensitive as it says) as epoch milliseconds; NaN otherwise. */
function parseHttpDate(text: string, now: number): number {
  let match = IMF_FIXDATE.exec(text);
  if (match !== null) return utc(match[3]!, match[2]!, match[1]!, match[4]!, match[5]!, match[6]!);
  match = RFC850_DATE.exec(text);
  if (match !== null) {
    // A two-digit year is the most recent one with those digits that is not more than 50 years
    // ahead (§5.6.7).
    const thisYear = new Date(now).getUTCFullYear();
    let year = thisYear - (thisYear % 100) + Number(match[3]);
    if (year > thisYear + 50) year -= 100;
    return utc(String(year), match[2]!, match[1]!, match[4]!, match[5]!, match[6]!);
  }
  match = ASCTIME_DATE.exec(text);
  if (match !== null) return utc(match[6]!, match[1]!, match[2]!, match[3]!, match[4]!, match[5]!);
  return Number.NaN;
}

function utc(year: string, month: string, day: string, hour: string, minute: string, second: string): number {
  const [y, d, h, min, s] = [Number(year), Number(day), Number(hour), Number(minute), Number(second)];
  const m = MONTHS.indexOf(month);
  // setUTCFullYear, not Date.UTC: that one reads years 0-99 as 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(y, m + 1, 0);
  const daysInMonth = date.getUTCDate();
  // 60 is a leap second (RFC 5322 §3.3), which Date counts as the next minute's first.
  if (d < 1 || d > daysInMonth || h > 23 || min > 59 || s > 60) return Number.NaN;
  date.setUTCFullYear(y, m, d);
  return date.setUTCHours(h, min, s, 0);
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
