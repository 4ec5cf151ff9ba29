/**
 * The API seen as the soak's client: every answer counted by route and status (an odd one, a 500,
 * shows in the report), transient answers retried with capped backoff through the outages the soak
 * causes, and the API's own error log read for errors other than the expected ones.
 */
import { isRecord, parseJson } from '../shared/json-values.js';
import { sleep } from '../shared/timing.js';
import { log } from './run-log.js';
import { isStopping } from './stop-signal.js';

export interface ApiAnswer {
  /** 0: no HTTP answer at all (connection refused or reset, or our own timeout). */
  status: number;
  body: unknown;
  retryAfterMs: number | undefined;
}

/** Counts every API answer by "METHOD route status", so odd answers (a 500) show in the report. */
export const apiAnswers = new Map<string, number>();

export interface ApiError {
  at: string;
  type: string;
  message: string;
  stack: string;
}

/** Errors the API logged other than the expected ones (Temporal away, load shed): each is a finding. */
export const apiErrors: ApiError[] = [];
const EXPECTED_API_ERRORS = new Set(['TemporalUnavailableError', 'OverloadedError']);

/** Fastify's logger writes here (level error): the API answers 500 without details, its log has them. */
export const apiLogStream = {
  write(line: string): void {
    const entry = parseJson(line);
    const err = isRecord(entry) && isRecord(entry.err) ? entry.err : undefined;
    if (err === undefined) return;
    const type = typeof err.type === 'string' ? err.type : 'unknown';
    if (EXPECTED_API_ERRORS.has(type) || apiErrors.length >= 50) return;
    const message = typeof err.message === 'string' ? err.message : '';
    const stack = typeof err.stack === 'string' ? err.stack.split('\n').slice(0, 8).join('\n') : '';
    apiErrors.push({ at: new Date().toISOString(), type, message, stack });
    log(`API ERROR ${type}: ${message}`);
  },
};

export async function callApi(
  baseUrl: string,
  method: string,
  route: string,
  urlPath: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiAnswer> {
  let answer: ApiAnswer;
  try {
    const response = await fetch(`${baseUrl}${urlPath}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await response.text();
    const retryAfter = Number(response.headers.get('retry-after'));
    answer = {
      status: response.status,
      body: text === '' ? undefined : parseJson(text),
      retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
    };
  } catch {
    answer = { status: 0, body: undefined, retryAfterMs: undefined };
  }
  const bucket = `${method} ${route} ${answer.status === 0 ? 'no-answer' : answer.status}`;
  apiAnswers.set(bucket, (apiAnswers.get(bucket) ?? 0) + 1);
  return answer;
}

/** Worth another try: no answer, a timeout, rate limiting, or Temporal away (503) while it restarts. */
function isTransient(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

/** Repeats `attempt` while its answer is transient, with capped backoff, for at most `budgetMs`. */
export async function withRetries(
  budgetMs: number,
  attempt: () => Promise<ApiAnswer>,
): Promise<{ answer: ApiAnswer; tries: number }> {
  const deadline = Date.now() + budgetMs;
  let backoffMs = 250;
  for (let tries = 1; ; tries++) {
    const answer = await attempt();
    const waitMs = Math.min(answer.retryAfterMs ?? backoffMs, 3_000);
    if (!isTransient(answer.status) || tries >= 500 || Date.now() + waitMs > deadline || isStopping()) return { answer, tries };
    await sleep(waitMs);
    backoffMs = Math.min(backoffMs * 2, 2_000);
  }
}
