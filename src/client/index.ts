/**
 * The AsyncQueue client SDK: `import { AsyncQueue } from 'asyncqueue/client'`.
 *
 *   const aq = new AsyncQueue({ baseUrl: 'https://queue.internal', apiKey: process.env.AQ_KEY });
 *   const { id } = await aq.tasks.create({ callbackUrl, payload, webhookUrl, retries: 3, timeout: 120 });
 *
 * Requests use the platform's fetch and are retried with `p-retry`; the receiver helpers build on
 * the `standardwebhooks` library.
 */
import pRetry from 'p-retry';
import { AsyncQueueApiError, AsyncQueueConnectionError, WaitTimeoutError } from './errors.js';
import { Schedules } from './schedules.js';
import { Operations } from './operations.js';
import { FlowControl } from './flow-control.js';
import {
  TERMINAL_STATUSES,
  type BatchResult,
  type BatchTaskInput,
  type Attempt,
  type AttemptList,
  type CreateTaskInput,
  type CreatedTask,
  type BulkRequest,
  type CreatedOperation,
  type ListTasksParams,
  type ReplayOverrides,
  type ReplayedTask,
  type Task,
  type TaskPage,
} from './types.js';

export * from './errors.js';
export * from './types.js';
export type { CreateScheduleInput, Schedule, SchedulePage } from './schedules.js';
export { FlowControl } from './flow-control.js';
export { verifyRequest, expressReceiver } from './receiver.js';
// fastifyReceiver: `import { fastifyReceiver } from 'asyncqueue/client/fastify'` (needs no Fastify types here).

/**
 * Headers a callback answers `202` with to take the work and finish the attempt later through
 * `aq.tasks.complete` or `aq.tasks.fail` (async completion). A `202` without them is a success
 * like any 2xx, and its body is the task's result.
 *
 *   reply.code(202).headers(ASYNC_COMPLETION_HEADERS).send({ accepted: true });
 */
export const ASYNC_COMPLETION_HEADERS: Readonly<Record<'AsyncQueue-Completion', 'async'>> = Object.freeze({
  'AsyncQueue-Completion': 'async',
});

export interface AsyncQueueOptions {
  /** Where the API listens, e.g. `http://127.0.0.1:3000`. */
  baseUrl: string;
  /** One of the service's ASYNCQUEUE_API_KEYS; omit when it runs without keys. */
  apiKey?: string;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  /** Retries for requests that are safe to repeat (default 3). */
  maxRetries?: number;
  /** Another fetch implementation (tests, proxies). */
  fetch?: typeof fetch;
}

export interface CreateOptions {
  /**
   * Makes the create safe to retry: the same key and body return the existing task. With a key
   * the client itself retries network errors, 429 and 503; without one it never retries a create.
   */
  idempotencyKey?: string;
}

/** A POST that starts something: retried by the client only with an Idempotency-Key, which makes a repeat find it. */
function startOnce(options: CreateOptions): { headers: Record<string, string>; retry: boolean } {
  const key = options.idempotencyKey;
  return key !== undefined ? { headers: { 'idempotency-key': key }, retry: true } : { headers: {}, retry: false };
}

export interface WaitOptions {
  /** Give up after this long (default 5 minutes) with a WaitTimeoutError. */
  timeoutMs?: number;
  /**
   * Unused: `wait` long-polls the server (`GET /v1/tasks/{id}?wait=N`), which answers as soon as
   * the task ends. Kept so that existing calls still compile.
   */
  intervalMs?: number;
}

/** The longest `?wait` the server takes, in seconds. */
const MAX_WAIT_SECONDS = 60;
/** A long poll's request may take this much longer than its `wait` before the client gives up. */
const WAIT_REQUEST_SLACK_MS = 15_000;

export class AsyncQueue {
  readonly tasks: Tasks;
  /** Bulk operations started with `aq.tasks.bulk`. */
  readonly operations: Operations;
  readonly schedules: Schedules;
  /** Limits shared by the tasks of one `flowControl.key` (flow-control.ts). */
  readonly flowControl: FlowControl;

  constructor(options: AsyncQueueOptions) {
    const http = new HttpClient(options);
    this.tasks = new Tasks(http);
    this.operations = new Operations(http);
    this.schedules = new Schedules(http);
    this.flowControl = new FlowControl(http);
  }
}

class Tasks {
  constructor(private readonly http: HttpClient) {}

  /** Creates a task; answers at once with its id (the callback runs later). */
  async create(task: CreateTaskInput, options: CreateOptions = {}): Promise<CreatedTask> {
    const created = await this.http.request<CreatedTask>('POST', '/v1/tasks', { body: task, ...startOnce(options) });
    return { id: created.id, status: created.status, createdAt: created.createdAt };
  }

  /**
   * Creates up to 100 tasks in one request (`POST /v1/tasks/batch`). Resolves with one result per
   * entry, in order: `{ status: 202, id, createdAt }` created, `{ status: 200, id, createdAt, task }`
   * an idempotent repeat, or `{ status: 400 | 409 | 413 | 500 | 503, error }` for an entry that
   * started nothing; check each. Retried like `create` only when every entry has an `idempotencyKey`.
   */
  async createMany(tasks: readonly BatchTaskInput[]): Promise<BatchResult[]> {
    const { results } = await this.http.request<{ results: BatchResult[] }>('POST', '/v1/tasks/batch', {
      body: { tasks },
      retry: tasks.length > 0 && tasks.every((task) => task.idempotencyKey !== undefined),
    });
    return results;
  }

  get(id: string): Promise<Task> {
    return this.http.request<Task>('GET', `/v1/tasks/${encodeURIComponent(id)}`, { retry: true });
  }

  /**
   * Every callback and webhook attempt of the task, oldest first, with its outcome, status code,
   * error and the start of the answer; also for ended tasks.
   */
  async attempts(id: string): Promise<Attempt[]> {
    const list = await this.http.request<AttemptList>('GET', `/v1/tasks/${encodeURIComponent(id)}/attempts`, {
      retry: true,
    });
    return list.attempts;
  }

  /**
   * One page (`await aq.tasks.list()`), or every task across pages
   * (`for await (const task of aq.tasks.list({ status: 'failed' }))`).
   */
  list(params: ListTasksParams = {}): TaskListing {
    return new TaskListing((cursor) => {
      const query = new URLSearchParams();
      if (params.status !== undefined) query.set('status', params.status);
      for (const label of params.label ?? []) query.append('label', label);
      if (params.scheduleId !== undefined) query.set('scheduleId', params.scheduleId);
      if (params.limit !== undefined) query.set('limit', String(params.limit));
      const pageCursor = cursor ?? params.cursor;
      if (pageCursor !== undefined) query.set('cursor', pageCursor);
      const suffix = query.size > 0 ? `?${query.toString()}` : '';
      return this.http.request<TaskPage>('GET', `/v1/tasks${suffix}`, { retry: true });
    });
  }

  /** Asks the task to stop: 202 with the view; AsyncQueueApiError 409 when it has already ended. */
  cancel(id: string, options: { reason?: string } = {}): Promise<Task> {
    return this.http.request<Task>('POST', `/v1/tasks/${encodeURIComponent(id)}/cancel`, {
      body: options.reason !== undefined ? { reason: options.reason } : {},
      retry: true, // repeating a cancel is harmless: the workflow takes the first one
    });
  }

  /**
   * A new task with the ended task's callback, payload, headers, webhook and labels (and its other
   * fields), `replayOf` pointing back; `delay`, `retries` and `timeout` may be overridden.
   * AsyncQueueApiError 409 while the task has not ended.
   */
  async replay(id: string, overrides: ReplayOverrides = {}, options: CreateOptions = {}): Promise<ReplayedTask> {
    const replayed = await this.http.request<ReplayedTask & Task>('POST', `/v1/tasks/${encodeURIComponent(id)}/replay`, {
      body: overrides,
      ...startOnce(options),
    });
    return { id: replayed.id, status: replayed.status, createdAt: replayed.createdAt, replayOf: replayed.replayOf ?? id };
  }

  /**
   * Cancels or replays many tasks: `{ action, filter: { status?, label?, createdAfter?, createdBefore?,
   * flowControlKey? } }` or `{ action, ids }`. Answers at once; follow it with `aq.operations.get(id)`.
   * With `idempotencyKey`, a repeat (and the client's own retry) answers the same operation.
   */
  bulk(request: BulkRequest, options: CreateOptions = {}): Promise<CreatedOperation> {
    // Without a key a repeat would start a second operation (a second replay of each task).
    return this.http.request<CreatedOperation>('POST', '/v1/tasks/bulk', { body: request, ...startOnce(options) });
  }

  /**
   * For the callback server while it works: report progress, shown in the task view. Pass the
   * `AsyncQueue-Task-Token` of the callback request when this client has no API key.
   */
  async reportProgress(
    id: string,
    update: { percent?: number; message?: string; data?: unknown },
    options: CalleeOptions = {},
  ): Promise<void> {
    await this.http.request('POST', `/v1/tasks/${encodeURIComponent(id)}/progress`, {
      body: update,
      headers: calleeHeaders(options),
      retry: true, // a repeated report only repeats the same progress
    });
  }

  /**
   * Finishes an attempt whose callback answered `202` with `AsyncQueue-Completion: async`
   * (ASYNC_COMPLETION_HEADERS), with the task's result. 409 when no attempt awaits completion;
   * 503 (retried here) in the moment before the wait has begun.
   */
  complete(id: string, result: unknown, options: CalleeOptions = {}): Promise<Task> {
    return this.http.request<Task>('POST', `/v1/tasks/${encodeURIComponent(id)}/complete`, {
      body: { result },
      headers: calleeHeaders(options),
      retry: false, // a lost answer is ambiguous: the caller decides whether to read the task
      retryCodes: NOT_READY_CODES,
    });
  }

  /**
   * Fails an attempt whose callback answered `202` with `AsyncQueue-Completion: async`; the task
   * retries it like a 5xx unless `retryable` is false.
   */
  fail(
    id: string,
    error: { message: string; code?: string },
    options: CalleeOptions & { retryable?: boolean } = {},
  ): Promise<Task> {
    return this.http.request<Task>('POST', `/v1/tasks/${encodeURIComponent(id)}/fail`, {
      body: { error, ...(options.retryable !== undefined ? { retryable: options.retryable } : {}) },
      headers: calleeHeaders(options),
      retry: false,
      retryCodes: NOT_READY_CODES,
    });
  }

  /**
   * Waits until the task has ended (succeeded, failed or cancelled), and returns it. Long-polls:
   * each request (`GET /v1/tasks/{id}?wait=N`, N ≤ 60) returns as soon as the task ends.
   */
  async wait(id: string, options: WaitOptions = {}): Promise<Task> {
    const deadline = Date.now() + (options.timeoutMs ?? 5 * 60_000);
    for (;;) {
      const remaining = deadline - Date.now();
      // Whole seconds, at least 1: the last request may overshoot the deadline by under a second.
      const seconds = Math.min(MAX_WAIT_SECONDS, Math.max(1, Math.ceil(remaining / 1000)));
      const task = await this.http.request<Task>('GET', `/v1/tasks/${encodeURIComponent(id)}?wait=${seconds}`, {
        retry: true,
        timeoutMs: seconds * 1000 + WAIT_REQUEST_SLACK_MS,
      });
      if (TERMINAL_STATUSES.includes(task.status)) return task;
      if (deadline - Date.now() <= 0) throw new WaitTimeoutError(id, task.status);
    }
  }
}

export interface CalleeOptions {
  /** The callback request's `AsyncQueue-Task-Token` (instead of an API key). */
  taskToken?: string;
}

function calleeHeaders(options: CalleeOptions): Record<string, string> {
  return options.taskToken !== undefined ? { 'asyncqueue-task-token': options.taskToken } : {};
}

/** A page request that is also an async iterator over every task of every following page. */
export class TaskListing implements PromiseLike<TaskPage>, AsyncIterable<Task> {
  private first: Promise<TaskPage> | undefined;

  constructor(private readonly fetchPage: (cursor: string | undefined) => Promise<TaskPage>) {}

  then<A = TaskPage, B = never>(
    onFulfilled?: ((page: TaskPage) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    this.first ??= this.fetchPage(undefined);
    return this.first.then(onFulfilled, onRejected);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Task> {
    let cursor: string | undefined;
    do {
      const page = await this.fetchPage(cursor);
      yield* page.tasks;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
  }
}

interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** The request may be repeated: retry network errors, 429 and 503. */
  retry: boolean;
  /** Error codes that say the server did nothing, so even a request that may not be repeated is retried. */
  retryCodes?: readonly string[];
  /** This request's own timeout (a long poll's), instead of the client's. */
  timeoutMs?: number;
}

/** `/complete` or `/fail` in the moment before the attempt's wait has begun: nothing happened yet. */
const NOT_READY_CODES = ['completion_not_ready'] as const;

class HttpClient {
  private readonly baseUrl: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: AsyncQueueOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  async request<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    const repeatable = options.retry || options.retryCodes !== undefined;
    const attempts = repeatable ? (this.options.maxRetries ?? 3) + 1 : 1;
    return pRetry(() => this.once<T>(method, path, options), {
      retries: attempts - 1,
      // Exponential backoff with jitter: 250-500 ms, then 0.5-1 s, 1-2 s, … up to 5 s.
      minTimeout: 250,
      factor: 2,
      maxTimeout: 5_000,
      randomize: true,
      // A retry the server timed (Retry-After) waits what it asked instead (capped at 30 s).
      // p-retry has no per-attempt delay, so such a failure consumes none of its retries (which
      // would add the backoff); the attempt limit is then kept by attemptNumber, in shouldRetry.
      shouldConsumeRetry: ({ error }) => retryAfterMs(error) === undefined,
      shouldRetry: async ({ error, attemptNumber }) => {
        if (attemptNumber >= attempts || !isRetryable(error, options)) return false;
        const asked = retryAfterMs(error);
        if (asked !== undefined) await sleep(asked);
        return true;
      },
    });
  }

  private async once<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (this.options.apiKey !== undefined) headers.authorization = `Bearer ${this.options.apiKey}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await this.fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        signal: AbortSignal.timeout(options.timeoutMs ?? this.options.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new AsyncQueueConnectionError(`${method} ${path}: ${(err as Error).message}`, { cause: err });
    }
    const text = await response.text();
    const body: unknown = text === '' ? undefined : safeJson(text);
    if (response.ok) return body as T;
    const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const retryAfterHeader = response.headers.get('retry-after');
    const retryAfter = retryAfterHeader === null ? Number.NaN : Number(retryAfterHeader);
    throw new AsyncQueueApiError(
      response.status,
      typeof error?.code === 'string' ? error.code : `http_${response.status}`,
      typeof error?.message === 'string' ? error.message : `${method} ${path} answered ${response.status}`,
      Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined,
    );
  }
}

function isRetryable(err: Error, options: RequestOptions): boolean {
  if (!options.retry) return err instanceof AsyncQueueApiError && (options.retryCodes ?? []).includes(err.code);
  if (err instanceof AsyncQueueConnectionError) return true;
  return err instanceof AsyncQueueApiError && (err.status === 429 || err.status === 503);
}

function retryAfterMs(err: Error): number | undefined {
  const asked = err instanceof AsyncQueueApiError ? err.retryAfterSeconds : undefined;
  return asked === undefined ? undefined : Math.min(asked * 1000, 30_000);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
