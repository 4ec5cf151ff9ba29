/**
 * Tasks on Temporal: create starts a workflow, read queries it, list searches visibility, cancel
 * signals it. The API's routes reach Temporal only through this service.
 */
import { randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type Client,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import {
  AWAIT_COMPLETION_ACTIVITY,
  CALLBACK_ACTIVITY,
  TASK_FAILED_ERROR_TYPE,
  TASK_MEMO_KEY,
  TASK_STATUS_SEARCH_ATTRIBUTE,
  TASK_WORKFLOW_TYPE,
  WORKFLOW_ID_PREFIX,
  cancelTaskSignal,
  indexedTaskStatus,
  isTerminal,
  progressSignal,
  workflowIdForTask,
  type JsonValue,
  type ProgressUpdate,
  type TaskInput,
  type TaskMemo,
  type TaskPolicy,
  type TaskStatus,
} from '../../../workflows/task-contract.js';
import type { taskWorkflow } from '../../../workflows/task-workflow.js';
import { DEFAULT_PRIORITY, type TaskFlowControl } from '../../../workflows/flow-control-contract.js';
import { FlowControlService } from '../flow-control/flow-control-service.js';
import {
  PayloadTooLargeError,
  TaskAlreadyEndedError,
  TaskNotFoundError,
  TemporalUnavailableError,
  ValidationError,
} from '../../shared/errors.js';
import { TEMPORAL_PAYLOAD_LIMIT_BYTES } from '../../shared/temporal-limits.js';
import { TemporalCalls } from '../temporal/temporal-calls.js';
import { AsyncCompletions, type AttemptOutcome } from './async-completion.js';
import { IdempotencyConflictError, isSameRequest, requestHash, taskIdForKey } from './idempotency.js';
import { decodeCursor, encodeCursor } from './list-cursor.js';
import { closedExecutionStatus, decodePayload, statusFilter, taskMemo } from './list-query.js';
import { ProgressCoalescer } from './progress-coalescer.js';
import { closedView, timestampToIso, withPendingActivities, type TaskView } from './task-views.js';

export type { TaskView } from './task-views.js';

/** Memo key of the creating request's hash, which tells an idempotent retry from a conflicting reuse. */
const REQUEST_MEMO_KEY = 'request';
/**
 * A workflow input over Temporal's payload limit is refused by the server; measured here first,
 * on the encoded input, so the answer is a 413 naming the field.
 */
const INPUT_MARGIN_BYTES = 4 * 1024;
/** Progress `data` is stored with every report the workflow receives: kept small (see progress-coalescer.ts). */
export const MAX_PROGRESS_DATA_BYTES = 4 * 1024;

export interface NewTask {
  callbackUrl: string;
  payload: JsonValue;
  webhookUrl: string | null;
  retries: number;
  timeout: number;
  delay: number;
  headers: Record<string, string>;
  flowControl?: TaskFlowControl;
  priority?: number;
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

export class TaskService {
  private readonly calls: TemporalCalls;
  private readonly completions: AsyncCompletions;
  private readonly progress: ProgressCoalescer;
  /** The flow-control keys' limiters (flow-control-service.ts), on the same Temporal calls. */
  readonly flowControl: FlowControlService;

  constructor(
    client: Client,
    private readonly options: TaskServiceOptions,
  ) {
    this.calls = new TemporalCalls(client, options);
    this.completions = new AsyncCompletions(this.calls, options.maxResultBytes);
    this.flowControl = new FlowControlService(this.calls, options);
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
  async create(task: NewTask, idempotency?: { caller: string; key: string }): Promise<{ task: TaskView; created: boolean }> {
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
      priority: task.priority ?? DEFAULT_PRIORITY,
      ...(task.flowControl !== undefined ? { flowControl: { key: task.flowControl.key, waiting: false } } : {}),
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
      ...(task.flowControl !== undefined ? { flowControl: task.flowControl } : {}),
      ...(task.priority !== undefined ? { priority: task.priority } : {}),
    };
    const inputBytes = Buffer.byteLength(JSON.stringify(input));
    if (inputBytes > TEMPORAL_PAYLOAD_LIMIT_BYTES - INPUT_MARGIN_BYTES) {
      throw new PayloadTooLargeError(
        'payload',
        `the task encodes to ${inputBytes} bytes; Temporal stores at most ${TEMPORAL_PAYLOAD_LIMIT_BYTES - INPUT_MARGIN_BYTES} per task`,
      );
    }
    try {
      await this.calls.rpc(
        () =>
          this.calls.client.workflow.start<typeof taskWorkflow>(TASK_WORKFLOW_TYPE, {
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
      const existing = await this.calls.describe(id);
      const stored = existing.memo?.[REQUEST_MEMO_KEY] as { hash?: string } | undefined;
      if (!isSameRequest(stored?.hash, task)) throw new IdempotencyConflictError(id);
      return { task: await this.get(id), created: false };
    }
    if (task.flowControl !== undefined) {
      // The create's limits become the key's (the newest wins). A task due now also asks for its
      // first slot here, sparing the grant a hop through the task's first workflow task; the task
      // asks as well, so a failure here delays nothing but the answer (a 503 to retry).
      const { key, limits } = task.flowControl;
      const acquire =
        task.delay === 0 ? { taskId: id, request: 1, priority: input.priority ?? DEFAULT_PRIORITY, createdAt } : undefined;
      await this.flowControl.configure(key, { limits, ...(acquire !== undefined ? { acquire } : {}) });
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
    const description = await this.calls.describe(id);
    const memo = taskMemo(description);
    if (description.status.name === 'RUNNING') {
      const state = askWorker
        ? await this.calls.queryState(id).catch((err: unknown) => {
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
    const response = await this.calls
      .rpc(() =>
        this.calls.client.workflowService.listWorkflowExecutions({
          namespace: this.options.namespace,
          pageSize: query.limit,
          query: filters.join(' AND '),
          nextPageToken: query.cursor !== undefined ? decodeCursor(this.options.cursorKey, query.cursor) : null,
        }),
      )
      .catch((err: unknown) => {
        if (query.cursor !== undefined && err instanceof Error && !(err instanceof TemporalUnavailableError)) {
          throw new ValidationError('cursor', 'is not a cursor this service returned');
        }
        throw err;
      });
    const views = await Promise.all((response.executions ?? []).map(async (execution) => this.listedView(execution)));
    const token = response.nextPageToken;
    return {
      tasks: views.filter(
        (view): view is TaskView => view !== undefined && (query.status === undefined || view.status === query.status),
      ),
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
    const description = await this.calls.describe(memo.id).catch(() => undefined);
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
    await this.calls
      .rpc(() => this.calls.handle(id).signal(cancelTaskSignal, request), { taskId: id, sizeField: 'reason' })
      .catch((err: unknown) => {
        // The workflow closed between the read and the signal: the task ended on its own.
        if (err instanceof TaskNotFoundError) throw new TaskAlreadyEndedError(id, 'ended');
        throw err;
      });
    return this.read(id, { askWorker: false });
  }

  /** Records what the callee reports while it works; shown as `progress` until the task ends. */
  async reportProgress(id: string, update: ProgressUpdate): Promise<void> {
    if (update.data !== undefined) {
      const bytes = Buffer.byteLength(JSON.stringify(update.data));
      if (bytes > MAX_PROGRESS_DATA_BYTES) {
        throw new PayloadTooLargeError(
          'data',
          `encodes to ${bytes} bytes; progress data may be at most ${MAX_PROGRESS_DATA_BYTES}`,
        );
      }
    }
    await this.progress.report(id, { ...update, reportedAt: new Date().toISOString() });
  }

  private async signalProgress(id: string, update: ProgressUpdate): Promise<void> {
    await this.calls
      .rpc(() => this.calls.handle(id).signal(progressSignal, update), { taskId: id, sizeField: 'data' })
      .catch((err: unknown) => {
        if (err instanceof TaskNotFoundError) throw new TaskAlreadyEndedError(id, 'ended');
        throw err;
      });
  }

  /** Temporal is reachable and answers for our namespace. */
  async ready(): Promise<boolean> {
    return this.calls.ready();
  }

  /** Sends the progress reports held back, then closes the Temporal side. */
  async close(): Promise<void> {
    await this.progress.flush();
    await this.calls.close();
  }

  /**
   * Ends the callback attempt that awaits async completion (async-completion.ts), and answers
   * with the task's view.
   */
  async completeAttempt(id: string, outcome: AttemptOutcome): Promise<TaskView> {
    await this.completions.complete(id, outcome);
    return this.get(id);
  }

  private async finalView(id: string, description: WorkflowExecutionDescription, memo: TaskMemo): Promise<TaskView> {
    const closed = closedExecutionStatus(description.raw.workflowExecutionInfo?.status);
    if (closed === 'Completed' || closed === 'Failed') {
      try {
        return await this.calls.rpc(() => this.calls.handle(id, description.runId).result(), { taskId: id });
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
    const history = await this.calls.rpc(() => this.calls.handle(id, runId).fetchHistory(), { taskId: id });
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
}
