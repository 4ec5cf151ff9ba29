/**
 * Tasks on Temporal: create starts a workflow, read queries it, list searches visibility, cancel
 * signals it. The only module that talks to the Temporal client on behalf of the API.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ActivityNotFoundError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type Client,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import proto, { type temporal } from '@temporalio/proto';
import {
  ASYNC_ACCEPTED_STATUS,
  AWAIT_COMPLETION_ACTIVITY,
  CALLBACK_ACTIVITY,
  CallbackErrorType,
  TASK_FAILED_ERROR_TYPE,
  TASK_MEMO_KEY,
  TASK_STATUS_SEARCH_ATTRIBUTE,
  TASK_WORKFLOW_TYPE,
  WORKFLOW_ID_PREFIX,
  cancelTaskSignal,
  indexedTaskStatus,
  isTerminal,
  progressSignal,
  taskStateQuery,
  workflowIdForTask,
  type AsyncCompletion,
  type JsonValue,
  type ProgressUpdate,
  type TaskInput,
  type TaskMemo,
  type TaskPolicy,
  type TaskState,
  type TaskStatus,
} from '../workflows/task-contract.js';
import type { taskWorkflow } from '../workflows/task-workflow.js';
import { IdempotencyConflictError, requestHash, taskIdForKey } from './idempotency.js';
import {
  CompletionNotReadyError,
  NotAwaitingCompletionError,
  PayloadTooLargeError,
  TaskAlreadyEndedError,
  TaskNotFoundError,
  TemporalUnavailableError,
  ValidationError,
} from './errors.js';
import { ProgressCoalescer } from './progress-coalescer.js';
import { TEMPORAL_PAYLOAD_LIMIT_BYTES } from './temporal-limits.js';
import { TemporalAvailability } from './temporal-availability.js';
import { translateTemporalError, type TranslateContext } from './temporal-errors.js';
import { decodeCursor, encodeCursor } from './list-cursor.js';
import { closedView, timestampToIso, withPendingActivities, type ClosedExecutionStatus, type TaskView } from './task-views.js';

export type { TaskView } from './task-views.js';

const { PendingActivityState, WorkflowExecutionStatus } = proto.temporal.api.enums.v1;
/** Memo key of the creating request's hash, which tells an idempotent retry from a conflicting reuse. */
const REQUEST_MEMO_KEY = 'request';
/**
 * A workflow input over Temporal's payload limit is refused by the server; measured here first,
 * on the encoded input, so the answer is a 413 naming the field.
 */
const INPUT_MARGIN_BYTES = 4 * 1024;
/** Progress `data` is stored with every report the workflow receives: kept small (see progress-coalescer.ts). */
export const MAX_PROGRESS_DATA_BYTES = 4 * 1024;
/**
 * A callee may call `/complete` a moment after its `202`, before the workflow has begun to
 * await completion: for this long the API waits for the wait to begin, then answers 503.
 */
const AWAIT_BEGIN_TIMEOUT_MS = 5_000;
const AWAIT_BEGIN_POLL_MS = 50;
/** Started, workflow task scheduled, started, completed: the call is scheduled with the next event. */
const FIRST_SCHEDULE_EVENTS = 4;

export interface NewTask {
  callbackUrl: string;
  payload: JsonValue;
  webhookUrl: string | null;
  retries: number;
  timeout: number;
  delay: number;
  headers: Record<string, string>;
}

export interface TaskListPage {
  tasks: TaskView[];
  nextCursor: string | null;
}

export interface TaskServiceOptions {
  namespace: string;
  taskQueue: string;
  policy: TaskPolicy;
  queryTimeoutMs: number;
  rpcTimeoutMs: number;
  /** Authenticates list cursors; every API process of one deployment must use the same key. */
  cursorKey: Buffer;
  /** At most one progress signal per task per this interval (progress-coalescer.ts). */
  progressIntervalMs: number;
  /** The largest `/complete` result, encoded: the same limit as a callback's answer. */
  maxResultBytes: number;
  onProgressDropped?: (taskId: string, err: unknown) => void;
}

type Handle = ReturnType<Client['workflow']['getHandle']>;

export class TaskService {
  private readonly availability: TemporalAvailability;
  private readonly progress: ProgressCoalescer;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly client: Client,
    private readonly options: TaskServiceOptions,
  ) {
    this.availability = new TemporalAvailability({
      intervalMs: 1_000,
      probe: () =>
        client.connection.withDeadline(Date.now() + 1_000, () =>
          client.workflowService.describeNamespace({ namespace: options.namespace }),
        ),
    });
    this.progress = new ProgressCoalescer({
      intervalMs: options.progressIntervalMs,
      send: (taskId, update) => this.signalProgress(taskId, update),
      onDeferredError: (taskId, err) => options.onProgressDropped?.(taskId, err),
    });
  }

  /**
   * Starts the task's workflow. With an idempotency key the id is derived from it, and a repeat of
   * the same request returns the existing task (`created: false`) instead of starting another.
   */
  async create(
    task: NewTask,
    idempotency?: { caller: string; key: string },
  ): Promise<{ task: TaskView; created: boolean }> {
    const id = idempotency !== undefined ? taskIdForKey(idempotency.caller, idempotency.key) : randomUUID();
    const hash = requestHash(task);
    const createdAt = new Date().toISOString();
    const status: TaskStatus = task.delay > 0 ? 'scheduled' : 'pending';
    const memo: TaskMemo = {
      id,
      status,
      callbackUrl: task.callbackUrl,
      webhookUrl: task.webhookUrl,
      retries: task.retries,
      timeout: task.timeout,
      delay: task.delay,
      createdAt,
      updatedAt: createdAt,
      attempts: 0,
      ...(task.webhookUrl !== null ? { webhook: { status: 'pending', attempts: 0 } } : {}),
    };
    const input: TaskInput = {
      id,
      callbackUrl: task.callbackUrl,
      payload: task.payload,
      webhookUrl: task.webhookUrl,
      retries: task.retries,
      timeoutSeconds: task.timeout,
      delaySeconds: task.delay,
      headers: task.headers,
      createdAt,
      policy: this.options.policy,
    };
    const inputBytes = Buffer.byteLength(JSON.stringify(input));
    if (inputBytes > TEMPORAL_PAYLOAD_LIMIT_BYTES - INPUT_MARGIN_BYTES) {
      throw new PayloadTooLargeError(
        'payload',
        `the task encodes to ${inputBytes} bytes; Temporal stores at most ${TEMPORAL_PAYLOAD_LIMIT_BYTES - INPUT_MARGIN_BYTES} per task`,
      );
    }
    try {
      await this.rpc(
        () =>
          this.client.workflow.start<typeof taskWorkflow>(TASK_WORKFLOW_TYPE, {
            taskQueue: this.options.taskQueue,
            workflowId: workflowIdForTask(id),
            // Keeps an id (and so an idempotency key) taken for as long as the task is retained.
            workflowIdReusePolicy: 'REJECT_DUPLICATE',
            args: [input],
            memo: { [TASK_MEMO_KEY]: memo, [REQUEST_MEMO_KEY]: { hash } },
            typedSearchAttributes: [{ key: TASK_STATUS_SEARCH_ATTRIBUTE, value: indexedTaskStatus(memo.status) }],
            staticSummary: `POST ${new URL(task.callbackUrl).host}`,
          }),
        { sizeField: 'payload' },
      );
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError) || idempotency === undefined) throw err;
      const existing = await this.describe(id);
      const stored = existing.memo?.[REQUEST_MEMO_KEY] as { hash?: string } | undefined;
      if (stored?.hash !== hash) throw new IdempotencyConflictError(id);
      return { task: await this.get(id), created: false };
    }
    return { task: memo, created: true };
  }

  async get(id: string): Promise<TaskView> {
    const view = await this.read(id, { askWorker: true });
    // A report this process holds back is newer than what the workflow has.
    const held = this.progress.latest(id);
    if (held === undefined || isTerminal(view.status)) return view;
    const { reportedAt, ...progress } = held;
    return { ...view, progress: { ...progress, updatedAt: reportedAt ?? new Date().toISOString() } };
  }

  /**
   * The task's view. A running task's freshest state is the worker's (query); without
   * `askWorker`, or when no worker answers in time, it is what the server stores (memo and
   * pending attempt). A finished task's comes from its result, or its memo (task-views.ts).
   */
  private async read(id: string, { askWorker }: { askWorker: boolean }): Promise<TaskView> {
    const description = await this.describe(id);
    const memo = taskMemo(description);
    if (description.status.name === 'RUNNING') {
      const state = askWorker
        ? await this.queryState(id).catch((err: unknown) => {
            if (err instanceof TemporalUnavailableError) throw err;
            return undefined; // no worker answered in time: what the server stores is the best we have
          })
        : undefined;
      return withPendingActivities(state ?? memo, description.raw.pendingActivities ?? []);
    }
    return this.finalView(id, description, memo);
  }

  async list(query: { status?: TaskStatus; limit: number; cursor?: string }): Promise<TaskListPage> {
    const filters = [`WorkflowType = '${TASK_WORKFLOW_TYPE}'`, `WorkflowId STARTS_WITH '${WORKFLOW_ID_PREFIX}'`];
    if (query.status !== undefined) filters.push(statusFilter(query.status));
    const response = await this.rpc(() =>
      this.client.workflowService.listWorkflowExecutions({
        namespace: this.options.namespace,
        pageSize: query.limit,
        query: filters.join(' AND '),
        nextPageToken: query.cursor !== undefined ? decodeCursor(this.options.cursorKey, query.cursor) : null,
      }),
    ).catch((err: unknown) => {
      if (query.cursor !== undefined && err instanceof Error && !(err instanceof TemporalUnavailableError)) {
        throw new ValidationError('cursor', 'is not a cursor this service returned');
      }
      throw err;
    });
    const views = await Promise.all((response.executions ?? []).map(async (execution) => this.listedView(execution)));
    const token = response.nextPageToken;
    return {
      tasks: views.filter((view): view is TaskView => view !== undefined && (query.status === undefined || view.status === query.status)),
      nextCursor: token && token.length > 0 ? encodeCursor(this.options.cursorKey, token) : null,
    };
  }

  private async listedView(execution: temporal.api.workflow.v1.IWorkflowExecutionInfo): Promise<TaskView | undefined> {
    // A `task-*` workflow of another program in the namespace has no task memo: not ours to list.
    const memo = decodePayload<TaskMemo>(execution.memo?.fields?.[TASK_MEMO_KEY]);
    if (memo === undefined) return undefined;
    const closed = closedExecutionStatus(execution.status);
    if (closed !== undefined) {
      if (closed === 'Completed' || (closed === 'Failed' && memo.status === 'failed')) return memo;
      return closedView(memo, {
        execution: closed,
        closedAt: timestampToIso(execution.closeTime),
        indexedStatus: decodePayload<string>(execution.searchAttributes?.indexedFields?.[TASK_STATUS_SEARCH_ATTRIBUTE.name]),
      });
    }
    if (isTerminal(memo.status)) return memo;
    // Pending, running and retrying share one indexed value; the server's activity state tells them apart.
    const description = await this.describe(memo.id).catch(() => undefined);
    return withPendingActivities(memo, description?.raw.pendingActivities ?? []);
  }

  /**
   * Reads and answers from what the server stores (memo, pending attempt, result once closed),
   * without a query: a cancel must not wait on the worker that is busy with the very call it
   * cuts off, nor on a dead one (at 5000 held calls, dropping the two queries took the cancel
   * request from 12.4 s to 3.5 s at p50 on the 2-core dev server).
   */
  async cancel(id: string, reason: string | undefined): Promise<TaskView> {
    const view = await this.read(id, { askWorker: false });
    if (isTerminal(view.status)) throw new TaskAlreadyEndedError(id, view.status);
    const request = { attemptsStarted: view.attempts, ...(reason !== undefined ? { reason } : {}) };
    await this.rpc(() => this.handle(id).signal(cancelTaskSignal, request), { taskId: id, sizeField: 'reason' }).catch(
      (err: unknown) => {
        // The workflow closed between the read and the signal: the task ended on its own.
        if (err instanceof TaskNotFoundError) throw new TaskAlreadyEndedError(id, 'ended');
        throw err;
      },
    );
    return this.read(id, { askWorker: false });
  }

  /** Records what the callee reports while it works; shown as `progress` until the task ends. */
  async reportProgress(id: string, update: ProgressUpdate): Promise<void> {
    if (update.data !== undefined) {
      const bytes = Buffer.byteLength(JSON.stringify(update.data));
      if (bytes > MAX_PROGRESS_DATA_BYTES) {
        throw new PayloadTooLargeError('data', `encodes to ${bytes} bytes; progress data may be at most ${MAX_PROGRESS_DATA_BYTES}`);
      }
    }
    await this.progress.report(id, { ...update, reportedAt: new Date().toISOString() });
  }

  private async signalProgress(id: string, update: ProgressUpdate): Promise<void> {
    await this.rpc(() => this.handle(id).signal(progressSignal, update), { taskId: id, sizeField: 'data' }).catch((err: unknown) => {
      if (err instanceof TaskNotFoundError) throw new TaskAlreadyEndedError(id, 'ended');
      throw err;
    });
  }

  /**
   * Ends the callback attempt that awaits async completion (its callback answered `202` with
   * `AsyncQueue-Completion: async`): with a result, as if the callback had answered 2xx; or with
   * an error, retried unless `retryable` is false, as if it had answered 5xx / 4xx.
   */
  async completeAttempt(
    id: string,
    outcome: { result: JsonValue } | { error: { message: string; code?: string }; retryable: boolean },
  ): Promise<TaskView> {
    if ('result' in outcome) {
      const bytes = Buffer.byteLength(JSON.stringify(outcome.result));
      if (bytes > this.options.maxResultBytes) {
        throw new PayloadTooLargeError('result', `encodes to ${bytes} bytes; a result may be at most ${this.options.maxResultBytes}`);
      }
    }
    const { activity, attempt, legacy } = await this.awaitingAttempt(id);
    await this.rpc(async () => {
      if ('result' in outcome) {
        // Attempts awaited by a worker's keep-alive (before awaitCompletion existed) end as the
        // callback activity itself, with its outcome.
        const completion = legacy
          ? { attempt, statusCode: ASYNC_ACCEPTED_STATUS, result: outcome.result }
          : ({ result: outcome.result } satisfies AsyncCompletion);
        await this.client.activity.complete(activity, completion);
      } else {
        await this.client.activity.fail(
          activity,
          ApplicationFailure.create({
            type: CallbackErrorType.ReportedFailure,
            message: outcome.error.message,
            nonRetryable: !outcome.retryable,
            details: [{ attempt, code: outcome.error.code ?? 'callback_reported_failure' }],
          }),
        );
      }
    }, { taskId: id, sizeField: 'result' }).catch((err: unknown) => {
      if (err instanceof ActivityNotFoundError) throw new NotAwaitingCompletionError(id);
      throw err;
    });
    return this.get(id);
  }

  /** The attempt awaiting completion; waits briefly when the callee's `202` is still on its way. */
  private async awaitingAttempt(
    id: string,
  ): Promise<{ activity: { workflowId: string; runId: string; activityId: string }; attempt: number; legacy: boolean }> {
    const deadline = Date.now() + AWAIT_BEGIN_TIMEOUT_MS;
    for (;;) {
      const description = await this.describe(id);
      const memo = taskMemo(description);
      if (description.status.name !== 'RUNNING') throw new NotAwaitingCompletionError(id);
      const pending = description.raw.pendingActivities ?? [];
      const started = (name: string) =>
        pending.find((activity) => activity.activityType?.name === name && activity.state === PendingActivityState.PENDING_ACTIVITY_STATE_STARTED);
      const waiting = started(AWAIT_COMPLETION_ACTIVITY);
      const call = started(CALLBACK_ACTIVITY);
      const legacy = call !== undefined && decodePayload<{ awaitingCompletion?: boolean }>(call.heartbeatDetails?.payloads?.[0])?.awaitingCompletion === true;
      const found = waiting ?? (legacy ? call : undefined);
      if (found?.activityId != null) {
        const activity = { workflowId: workflowIdForTask(id), runId: description.runId, activityId: found.activityId };
        return { activity, attempt: legacy ? (found.attempt ?? 1) : memo.attempts, legacy };
      }
      // Not yet, perhaps: the call that answered 202 is still finishing, or the wait is being
      // scheduled. But not before the first call, nor while a call waits to start or retry.
      const waitsForCall = pending.some(
        (activity) => activity.activityType?.name === CALLBACK_ACTIVITY && activity.state !== PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
      );
      // No activity pending and none ever scheduled (the first workflow task schedules the call):
      // a task that has not been called yet cannot await its completion.
      const neverCalled = pending.length === 0 && memo.attempts === 0 && description.historyLength <= FIRST_SCHEDULE_EVENTS;
      if (memo.status === 'scheduled' || memo.status === 'retrying' || isTerminal(memo.status) || waitsForCall || neverCalled) {
        throw new NotAwaitingCompletionError(id);
      }
      // Still beginning: a worker died mid-way and Temporal hands its work on after the workflow
      // task timeout (10 s by default). Not a 409: the callee should try again in a moment.
      if (Date.now() >= deadline) throw new CompletionNotReadyError(id);
      await delay(AWAIT_BEGIN_POLL_MS);
    }
  }

  /** Temporal is reachable and answers for our namespace. */
  async ready(): Promise<boolean> {
    if (!this.availability.available) return false;
    try {
      await this.rpc(() => this.client.workflowService.describeNamespace({ namespace: this.options.namespace }));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Sends the progress reports held back, stops probing Temporal, and waits for calls that outlived
   * their request's deadline, so that none is left to retry on a closed connection.
   */
  async close(): Promise<void> {
    await this.progress.flush();
    this.availability.close();
    await Promise.allSettled([...this.inFlight]);
  }

  private handle(id: string, runId?: string): Handle {
    return this.client.workflow.getHandle(workflowIdForTask(id), runId);
  }

  /** The task's workflow; TaskNotFoundError for an unknown id or another program's workflow. */
  private async describe(id: string): Promise<WorkflowExecutionDescription> {
    const description = await this.rpc(() => this.handle(id).describe(), { taskId: id });
    if (description.type !== TASK_WORKFLOW_TYPE || description.memo?.[TASK_MEMO_KEY] === undefined) {
      throw new TaskNotFoundError(id);
    }
    return description;
  }

  private async queryState(id: string): Promise<TaskState> {
    return this.client.connection.withDeadline(Date.now() + this.options.queryTimeoutMs, () =>
      this.handle(id).query(taskStateQuery),
    );
  }

  private async finalView(id: string, description: WorkflowExecutionDescription, memo: TaskMemo): Promise<TaskView> {
    const closed = closedExecutionStatus(description.raw.workflowExecutionInfo?.status);
    if (closed === 'Completed' || closed === 'Failed') {
      try {
        return await this.rpc(() => this.handle(id, description.runId).result(), { taskId: id });
      } catch (err) {
        const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
        if (cause instanceof ApplicationFailure && cause.type === TASK_FAILED_ERROR_TYPE && cause.details?.[0]) {
          return cause.details[0] as TaskView;
        }
        if (!(err instanceof WorkflowFailedError)) throw err;
      }
    }
    const view = closedView(memo, {
      execution: closed ?? 'Terminated',
      closedAt: description.closeTime?.toISOString(),
      indexedStatus: description.typedSearchAttributes.get(TASK_STATUS_SEARCH_ATTRIBUTE),
    });
    if (view.status !== 'succeeded') return view;
    // Stopped while delivering the webhook: the memo has no result, the callback's completion has.
    const result = await this.resultFromHistory(id, description.runId);
    return result === undefined ? view : { ...view, result };
  }

  private async resultFromHistory(id: string, runId: string): Promise<JsonValue | undefined> {
    const history = await this.rpc(() => this.handle(id, runId).fetchHistory(), { taskId: id });
    const names = new Map<string, string>();
    let result: JsonValue | undefined;
    for (const event of history.events ?? []) {
      const scheduled = event.activityTaskScheduledEventAttributes;
      if (scheduled?.activityType?.name != null) names.set(String(event.eventId), scheduled.activityType.name);
      const completed = event.activityTaskCompletedEventAttributes;
      if (completed == null) continue;
      const name = names.get(String(completed.scheduledEventId));
      if (name !== CALLBACK_ACTIVITY && name !== AWAIT_COMPLETION_ACTIVITY) continue;
      const value = decodePayload<{ result?: JsonValue; kind?: string }>(completed.result?.payloads?.[0]);
      if (value !== undefined && value.kind !== 'accepted' && 'result' in value) result = value.result;
    }
    return result;
  }

  /**
   * Every Temporal call made for a request gets a deadline, so an outage becomes a quick 503; once
   * one finds Temporal unreachable, the next ones answer 503 at once until it is back.
   */
  private async rpc<T>(call: () => Promise<T>, context: TranslateContext = {}): Promise<T> {
    this.availability.assertAvailable();
    const { rpcTimeoutMs } = this.options;
    const { connection } = this.client;
    let timer: NodeJS.Timeout | undefined;
    const abort = new AbortController();
    const attempt = connection.withAbortSignal(abort.signal, () => connection.withDeadline(Date.now() + rpcTimeoutMs, call));
    this.inFlight.add(attempt);
    try {
      // The client's own retries can outlast the gRPC deadline by a second or more (measured:
      // 2.9–3.7 s for a 2 s deadline with Temporal down), so the deadline is also kept here, and
      // the call is aborted when it passes.
      const deadline = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          abort.abort();
          reject(new TemporalUnavailableError(`Temporal did not answer within ${rpcTimeoutMs / 1000} s; retry shortly`));
        }, rpcTimeoutMs);
      });
      return await Promise.race([attempt, deadline]);
    } catch (err) {
      const translated = translateTemporalError(err, context);
      if (translated instanceof TemporalUnavailableError) this.availability.reportUnreachable();
      throw translated;
    } finally {
      clearTimeout(timer);
      // Settled or not, the request is answered; close() still waits for the call to end.
      void attempt.then(
        () => this.inFlight.delete(attempt),
        () => this.inFlight.delete(attempt),
      );
    }
  }
}

/**
 * The visibility query for a status. The indexed `TaskStatus` is what the workflow last set; a
 * workflow stopped from outside (terminated, timed out, cancelled by an older version) could not
 * set it, so its execution status decides (task-views.ts, `closedView`).
 */
function statusFilter(status: TaskStatus): string {
  const stoppedOutside = `ExecutionStatus IN ('Terminated', 'TimedOut', 'Failed')`;
  const unfinished = `TaskStatus IN ('scheduled', 'running')`;
  switch (status) {
    case 'scheduled':
    case 'pending':
    case 'running':
    case 'retrying':
      return `TaskStatus = '${indexedTaskStatus(status)}' AND ExecutionStatus = 'Running'`;
    case 'succeeded':
      return `TaskStatus = 'succeeded'`;
    case 'failed':
      return `(TaskStatus = 'failed' OR (${stoppedOutside} AND ${unfinished}))`;
    case 'cancelled':
      return `(TaskStatus = 'cancelled' OR (ExecutionStatus != 'Running' AND TaskStatus = 'cancelling') OR (ExecutionStatus = 'Canceled' AND ${unfinished}))`;
  }
}

const CLOSED_STATUS_NAMES: Partial<Record<number, ClosedExecutionStatus>> = {
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED]: 'Completed',
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED]: 'Failed',
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED]: 'Canceled',
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED]: 'Terminated',
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT]: 'TimedOut',
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW]: 'ContinuedAsNew',
};

function closedExecutionStatus(status: number | null | undefined): ClosedExecutionStatus | undefined {
  return status == null ? undefined : CLOSED_STATUS_NAMES[status];
}

function taskMemo(description: WorkflowExecutionDescription): TaskMemo {
  return description.memo![TASK_MEMO_KEY] as TaskMemo; // describe() checked that it is there
}

function decodePayload<T>(payload: temporal.api.common.v1.IPayload | null | undefined): T | undefined {
  if (payload == null) return undefined;
  return defaultPayloadConverter.fromPayload<T>(payload as never);
}
