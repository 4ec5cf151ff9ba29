/**
 * Batch create: every entry is checked as a single create is (schema, destinations, size,
 * idempotency), then the entries that passed start together, a bounded number at a time. Each
 * entry's outcome is its own result, in order; one entry's failure never touches another.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { DestinationGuard } from '../../../activities/destination-guard.js';
import { AsyncQueueError } from '../../shared/errors.js';
import { validationMessage, validatorFor, type ValidationIssue } from '../request-validation.js';
import type { CreateTaskBody } from '../schemas.js';
import { IdempotencyConflictError } from '../tasks/idempotency.js';
import { newTaskFromRequest } from '../tasks/task-input.js';
import type { PreparedTask, TaskService } from '../tasks/task-service.js';
import { BatchTaskSchema, type BatchResult, type BatchTask } from './batch-schemas.js';

/**
 * Starts in flight at once. Enough that a batch of 100 takes a handful of round trips to
 * Temporal; few enough that one batch cannot take every connection slot of the API process.
 */
export const BATCH_START_CONCURRENCY = 16;
/** Entries checked at once: a check may wait for DNS (the destination guard). */
const BATCH_CHECK_CONCURRENCY = 32;

// The same validator settings as the app's body validation (strict types, schema defaults).
const checkEntry = validatorFor({ coerceTypes: false }).compile<BatchTask>(BatchTaskSchema);

export interface BatchCreateContext {
  tasks: TaskService;
  guard: DestinationGuard;
  /** Scopes entries' idempotency keys, as the header's are scoped (v1.ts). */
  caller: string;
  log: FastifyBaseLogger;
  /** Called for each task that started (not for idempotent repeats). */
  onTaskCreated: (delayed: boolean) => void;
}

type Checked = { ok: true; prepared: PreparedTask } | { ok: false; result: BatchResult };

export async function createBatch(entries: readonly unknown[], context: BatchCreateContext): Promise<BatchResult[]> {
  const checked = await mapBounded(entries, BATCH_CHECK_CONCURRENCY, (entry, index) => check(entry, index, context));
  return mapBounded(checked, BATCH_START_CONCURRENCY, async (entry, index) =>
    entry.ok ? start(entry.prepared, index, context) : entry.result,
  );
}

async function check(entry: unknown, index: number, context: BatchCreateContext): Promise<Checked> {
  try {
    if (!checkEntry(entry)) {
      const issue = checkEntry.errors?.[0] as ValidationIssue | undefined;
      const message = issue !== undefined ? validationMessage(issue, 'body') : 'body: is invalid';
      return { ok: false, result: failed(400, 'invalid_request', inEntry(index, message)) };
    }
    const { idempotencyKey, ...body } = entry;
    const task = await newTaskFromRequest(body as CreateTaskBody, context.guard);
    const idempotency = idempotencyKey !== undefined ? { caller: context.caller, key: idempotencyKey } : undefined;
    return { ok: true, prepared: context.tasks.prepare(task, idempotency) };
  } catch (err) {
    return { ok: false, result: failure(err, index, context) };
  }
}

async function start(prepared: PreparedTask, index: number, context: BatchCreateContext): Promise<BatchResult> {
  try {
    const { task, created } = await context.tasks.start(prepared);
    if (!created) {
      context.log.info({ taskId: task.id, index }, 'batch: idempotent repeat, existing task returned');
      return { status: 200, id: task.id, createdAt: task.createdAt, task };
    }
    context.onTaskCreated(task.delay > 0);
    return { status: 202, id: task.id, createdAt: task.createdAt };
  } catch (err) {
    return failure(err, index, context);
  }
}

function failure(err: unknown, index: number, context: BatchCreateContext): BatchResult {
  if (err instanceof IdempotencyConflictError) {
    return failed(409, err.code, inEntry(index, `idempotencyKey: was already used for a different request (task ${err.taskId})`));
  }
  if (err instanceof AsyncQueueError && [400, 409, 413, 503].includes(err.statusCode)) {
    // Validation and size errors name their field; Temporal's say what happened to the entry.
    const message = err.statusCode === 503 ? `: ${err.message}` : `.${err.message}`;
    return failed(err.statusCode as 400 | 409 | 413 | 503, err.code, `tasks[${index}]${message}`);
  }
  context.log.error({ err, index }, 'batch: an entry failed unexpectedly');
  return failed(500, 'internal_error', `tasks[${index}]: internal error`);
}

/** `payload: must …` → `tasks[3].payload: must …`; `body: must be object` → `tasks[3]: must be object`. */
function inEntry(index: number, message: string): string {
  return message.startsWith('body: ') ? `tasks[${index}]: ${message.slice(6)}` : `tasks[${index}].${message}`;
}

function failed(status: 400 | 409 | 413 | 500 | 503, code: string, message: string): BatchResult {
  return { status, error: { code, message } };
}

/** `fn` over `items`, at most `limit` at once, results in the items' order. */
async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
