/**
 * Tasks on Temporal: create starts a workflow, read queries it, list searches visibility, cancel
 * signals it. The only module that talks to the Temporal client on behalf of the API.
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import {
  ActivityNotFoundError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  isGrpcServiceError,
  type Client,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import proto, { type temporal } from '@temporalio/proto';
import {
  ASYNC_ACCEPTED_STATUS,
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
  type JsonValue,
  type ProgressUpdate,
  type TaskMemo,
  type TaskPolicy,
  type TaskState,
  type TaskStatus,
} from '../workflows/task-contract.js';
import type { taskWorkflow } from '../workflows/task-workflow.js';
import { IdempotencyConflictError, requestHash, taskIdForKey } from './idempotency.js';
import {
  AsyncQueueError,
  NotAwaitingCompletionError,
  TaskAlreadyEndedError,
  TaskNotFoundError,
  TemporalUnavailableError,
  UnauthorizedError,
  ValidationError,
} from './errors.js';

const { PendingActivityState } = proto.temporal.api.enums.v1;
/** Memo key of the creating request's hash, which tells an idempotent retry from a conflicting reuse. */
const REQUEST_MEMO_KEY = 'request';
/** gRPC status codes (the subset we translate). */
const GrpcStatus = { DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, RESOURCE_EXHAUSTED: 8, UNAVAILABLE: 14 } as const;
type PendingActivity = temporal.api.workflow.v1.IPendingActivityInfo;

export interface NewTask {
  callbackUrl: string;
  payload: JsonValue;
  webhookUrl: string | null;
  retries: number;
  timeout: number;
  delay: number;
  headers: Record<string, string>;
}

/** What the API shows. Adds the live attempt details that only the server's pending-activity state knows. */
export interface TaskView extends TaskState {
  /** When `retrying`: when the next attempt starts. */
  nextAttemptAt?: string;
  /** When `retrying`: why the previous attempt failed. */
  lastError?: { message: string };
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
}

export class TaskService {
  constructor(
    private readonly client: Client,
    private readonly options: TaskServiceOptions,
  ) {}

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
    const taskToken = randomBytes(24).toString('base64url');
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
    try {
      await this.startWorkflow(id, task, memo, hash, taskToken);
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError) || idempotency === undefined) throw err;
      const existing = await this.rpc(() => this.client.workflow.getHandle(workflowIdForTask(id)).describe(), id);
      const stored = existing.memo?.[REQUEST_MEMO_KEY] as { hash?: string } | undefined;
      if (stored?.hash !== hash) throw new IdempotencyConflictError(id);
      return { task: await this.get(id), created: false };
    }
    return { task: memo, created: true };
  }

  private async startWorkflow(id: string, task: NewTask, memo: TaskMemo, hash: string, taskToken: string): Promise<void> {
    const { createdAt } = memo;
    await this.rpc(() =>
      this.client.workflow.start<typeof taskWorkflow>(TASK_WORKFLOW_TYPE, {
        taskQueue: this.options.taskQueue,
        workflowId: workflowIdForTask(id),
        // Keeps an id (and so an idempotency key) taken for as long as the task is retained.
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        args: [
          {
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
            taskToken,
          },
        ],
        // Only the token's digest is stored where lists and the UI show it.
        memo: { [TASK_MEMO_KEY]: memo, [REQUEST_MEMO_KEY]: { hash, tokenDigest: digestToken(taskToken) } },
        typedSearchAttributes: [{ key: TASK_STATUS_SEARCH_ATTRIBUTE, value: indexedTaskStatus(memo.status) }],
        staticSummary: `POST ${new URL(task.callbackUrl).host}`,
      }),
    );
  }

  async get(id: string): Promise<TaskView> {
    return this.read(id, { askWorker: true });
  }

  /**
   * The task's view. A running task's freshest state is the worker's (query); without
   * `askWorker`, or when no worker answers in time, it is what the server stores (memo and
   * pending attempt). A finished task's comes from its result.
   */
  private async read(id: string, { askWorker }: { askWorker: boolean }): Promise<TaskView> {
    const handle = this.client.workflow.getHandle(workflowIdForTask(id));
    const description = await this.rpc(() => handle.describe(), id);
    if (description.status.name === 'RUNNING') {
      const state = askWorker
        ? await this.queryState(id).catch((err: unknown) => {
            if (err instanceof TemporalUnavailableError) throw err;
            return undefined; // no worker answered in time: what the server stores is the best we have
          })
        : undefined;
      return withPendingActivities(state ?? memoView(description), description.raw.pendingActivities ?? []);
    }
    return this.finalView(id, description);
  }

  async list(query: { status?: TaskStatus; limit: number; cursor?: string }): Promise<TaskListPage> {
    const filters = [`WorkflowType = '${TASK_WORKFLOW_TYPE}'`, `WorkflowId STARTS_WITH '${WORKFLOW_ID_PREFIX}'`];
    if (query.status !== undefined) filters.push(`TaskStatus = '${indexedTaskStatus(query.status)}'`);
    const response = await this.rpc(() =>
      this.client.workflowService.listWorkflowExecutions({
        namespace: this.options.namespace,
        pageSize: query.limit,
        query: filters.join(' AND '),
        nextPageToken: query.cursor !== undefined ? decodeCursor(this.options.cursorKey, query.cursor) : null,
      }),
    ).catch((err: unknown) => {
      if (query.cursor !== undefined && !(err instanceof TemporalUnavailableError)) {
        throw new ValidationError('cursor', 'is not a cursor this service returned');
      }
      throw err;
    });
    const views = await Promise.all(
      (response.executions ?? []).map(async (execution) => {
        const memo = decodeMemo(execution.memo?.fields?.[TASK_MEMO_KEY]);
        if (memo === undefined) return undefined;
        if (isTerminal(memo.status)) return memo as TaskView;
        // Pending, running and retrying share one indexed value; the server's activity state tells them apart.
        const handle = this.client.workflow.getHandle(workflowIdForTask(memo.id));
        const description = await this.rpc(() => handle.describe()).catch(() => undefined);
        return withPendingActivities(memo, description?.raw.pendingActivities ?? []);
      }),
    );
    const token = response.nextPageToken;
    return {
      tasks: views.filter((view): view is TaskView => view !== undefined && (query.status === undefined || view.status === query.status)),
      nextCursor: token && token.length > 0 ? encodeCursor(this.options.cursorKey, token) : null,
    };
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
    const handle = this.client.workflow.getHandle(workflowIdForTask(id));
    const request = { attemptsStarted: view.attempts, ...(reason !== undefined ? { reason } : {}) };
    await this.rpc(() => handle.signal(cancelTaskSignal, request), id).catch(
      (err: unknown) => {
        // The workflow closed between the read and the signal: the task ended on its own.
        if (err instanceof TaskNotFoundError) throw new TaskAlreadyEndedError(id, 'ended');
        throw err;
      },
    );
    return this.read(id, { askWorker: false });
  }

  /** Throws UnauthorizedError unless `token` is the task's own `AsyncQueue-Task-Token`. */
  async verifyTaskToken(id: string, token: string): Promise<void> {
    const description = await this.rpc(() => this.client.workflow.getHandle(workflowIdForTask(id)).describe(), id);
    const stored = (description.memo?.[REQUEST_MEMO_KEY] as { tokenDigest?: string } | undefined)?.tokenDigest;
    const presented = Buffer.from(digestToken(token), 'base64url');
    if (stored === undefined || !timingSafeEqual(Buffer.from(stored, 'base64url'), presented)) {
      throw new UnauthorizedError('invalid AsyncQueue-Task-Token for this task');
    }
  }

  /** Records what the callee reports while it works; shown as `progress` until the task ends. */
  async reportProgress(id: string, update: ProgressUpdate): Promise<void> {
    const handle = this.client.workflow.getHandle(workflowIdForTask(id));
    await this.rpc(() => handle.signal(progressSignal, update), id).catch((err: unknown) => {
      if (err instanceof TaskNotFoundError) throw new TaskAlreadyEndedError(id, 'ended');
      throw err;
    });
  }

  /**
   * Ends the callback attempt that awaits async completion (its callback answered 202): with a
   * result, as if the callback had answered 2xx; or with an error, retried unless `retryable` is
   * false, as if it had answered 5xx / 4xx.
   */
  async completeAttempt(
    id: string,
    outcome: { result: JsonValue } | { error: { message: string; code?: string }; retryable: boolean },
  ): Promise<TaskView> {
    const handle = this.client.workflow.getHandle(workflowIdForTask(id));
    const description = await this.rpc(() => handle.describe(), id);
    const attempt = (description.raw.pendingActivities ?? []).find(
      (activity) =>
        activity.activityType?.name === 'callCallback' &&
        activity.state === PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
    );
    if (description.status.name !== 'RUNNING' || attempt?.activityId == null) {
      throw new NotAwaitingCompletionError(id);
    }
    const activity = { workflowId: workflowIdForTask(id), runId: description.runId, activityId: attempt.activityId };
    const number = attempt.attempt ?? 1;
    await this.rpc(async () => {
      if ('result' in outcome) {
        await this.client.activity.complete(activity, { attempt: number, statusCode: ASYNC_ACCEPTED_STATUS, result: outcome.result });
      } else {
        await this.client.activity.fail(
          activity,
          ApplicationFailure.create({
            type: CallbackErrorType.ReportedFailure,
            message: outcome.error.message,
            nonRetryable: !outcome.retryable,
            details: [{ attempt: number, code: outcome.error.code ?? 'callback_reported_failure' }],
          }),
        );
      }
    }, id).catch((err: unknown) => {
      if (err instanceof ActivityNotFoundError) throw new NotAwaitingCompletionError(id);
      throw err;
    });
    return this.get(id);
  }

  /** Temporal is reachable and answers for our namespace. */
  async ready(): Promise<boolean> {
    try {
      await this.rpc(() => this.client.workflowService.describeNamespace({ namespace: this.options.namespace }));
      return true;
    } catch {
      return false;
    }
  }

  private async queryState(id: string): Promise<TaskState> {
    const handle = this.client.workflow.getHandle(workflowIdForTask(id));
    return this.client.connection.withDeadline(Date.now() + this.options.queryTimeoutMs, () =>
      handle.query(taskStateQuery),
    );
  }

  private async finalView(id: string, description: WorkflowExecutionDescription): Promise<TaskView> {
    const handle = this.client.workflow.getHandle(workflowIdForTask(id), description.runId);
    const memo = memoView(description);
    try {
      return await this.rpc(() => handle.result(), id);
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        const cause = err.cause;
        if (cause instanceof ApplicationFailure && cause.type === TASK_FAILED_ERROR_TYPE && cause.details?.[0]) {
          return cause.details[0] as TaskView;
        }
        // Terminated, timed out or cancelled from outside AsyncQueue (the Temporal UI or CLI).
        const cancelled = description.status.name === 'CANCELLED';
        return {
          ...memo,
          status: cancelled ? 'cancelled' : 'failed',
          updatedAt: description.closeTime?.toISOString() ?? memo.updatedAt,
          error: {
            code: cancelled ? 'cancelled' : 'workflow_' + description.status.name.toLowerCase(),
            message: `the task's workflow was ${description.status.name.toLowerCase()} outside AsyncQueue`,
          },
        };
      }
      throw err;
    }
  }

  /** Every Temporal call made for a request gets a deadline, so an outage becomes a quick 503. */
  private async rpc<T>(call: () => Promise<T>, taskId?: string): Promise<T> {
    try {
      return await this.client.connection.withDeadline(Date.now() + this.options.rpcTimeoutMs, call);
    } catch (err) {
      throw translateError(err, taskId);
    }
  }
}

function translateError(err: unknown, taskId: string | undefined): unknown {
  if (err instanceof AsyncQueueError) return err;
  if (err instanceof WorkflowNotFoundError && taskId !== undefined) return new TaskNotFoundError(taskId);
  if (err instanceof WorkflowExecutionAlreadyStartedError) return err;
  let grpc: unknown = err;
  for (let depth = 0; grpc !== undefined && !isGrpcServiceError(grpc) && depth < 4; depth++) {
    grpc = (grpc as Error | undefined)?.cause;
  }
  if (isGrpcServiceError(grpc)) {
    if (grpc.code === GrpcStatus.NOT_FOUND && taskId !== undefined) return new TaskNotFoundError(taskId);
    // Unreachable, too slow, or shedding load (its rate limits): all say "retry shortly".
    if (
      grpc.code === GrpcStatus.UNAVAILABLE ||
      grpc.code === GrpcStatus.DEADLINE_EXCEEDED ||
      grpc.code === GrpcStatus.RESOURCE_EXHAUSTED
    ) {
      return new TemporalUnavailableError('Temporal is not reachable; retry shortly', { cause: err });
    }
  }
  return err;
}

function digestToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

function memoView(description: WorkflowExecutionDescription): TaskView {
  const memo = description.memo?.[TASK_MEMO_KEY] as TaskMemo | undefined;
  if (memo === undefined) throw new Error(`workflow ${description.workflowId} has no task memo`);
  return memo;
}

function decodeMemo(payload: temporal.api.common.v1.IPayload | undefined): TaskMemo | undefined {
  if (payload === undefined) return undefined;
  return defaultPayloadConverter.fromPayload<TaskMemo>(payload as never);
}

/**
 * Cursors wrap Temporal's page token with a marker and a MAC: the server spends its whole deadline
 * retrying a token it cannot parse, so a made-up cursor must be refused here, as a 400.
 */
const CURSOR_MARKER = Buffer.from('aq2:');
const CURSOR_MAC_BYTES = 16;

function cursorMac(key: Buffer, token: Uint8Array): Buffer {
  return createHmac('sha256', key).update(token).digest().subarray(0, CURSOR_MAC_BYTES);
}

function encodeCursor(key: Buffer, token: Uint8Array): string {
  return Buffer.concat([CURSOR_MARKER, token, cursorMac(key, token)]).toString('base64url');
}

function decodeCursor(key: Buffer, cursor: string): Uint8Array {
  const bytes = Buffer.from(cursor, 'base64url');
  const refuse = () => new ValidationError('cursor', 'is not a cursor this service returned');
  if (bytes.length <= CURSOR_MARKER.length + CURSOR_MAC_BYTES) throw refuse();
  if (!bytes.subarray(0, CURSOR_MARKER.length).equals(CURSOR_MARKER)) throw refuse();
  const token = bytes.subarray(CURSOR_MARKER.length, bytes.length - CURSOR_MAC_BYTES);
  if (!timingSafeEqual(cursorMac(key, token), bytes.subarray(bytes.length - CURSOR_MAC_BYTES))) throw refuse();
  return token;
}

function timestampToIso(timestamp: temporal.api.workflow.v1.IPendingActivityInfo['scheduledTime']): string | undefined {
  if (!timestamp) return undefined;
  const millis = Number(timestamp.seconds ?? 0) * 1000 + Math.floor((timestamp.nanos ?? 0) / 1e6);
  return new Date(millis).toISOString();
}

/**
 * Refines the workflow's own view with what only the server knows while an activity is pending:
 * whether the callback attempt has started (running) or waits for its retry (retrying), and how
 * many webhook attempts were made.
 */
function withPendingActivities(view: TaskView, pending: PendingActivity[]): TaskView {
  const refined: TaskView = { ...view };
  for (const activity of pending) {
    const started = activity.state === PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;
    const attempt = activity.attempt ?? 1;
    const attemptsStarted = started ? attempt : attempt - 1;
    const name = activity.activityType?.name;
    if (name === 'callCallback' && !isTerminal(view.status)) {
      refined.attempts = Math.max(view.attempts, attemptsStarted);
      if (started || activity.state === PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED) {
        refined.status = 'running';
      } else if (attempt > 1) {
        refined.status = 'retrying';
        const next = timestampToIso(activity.nextAttemptScheduleTime) ?? timestampToIso(activity.scheduledTime);
        if (next !== undefined) refined.nextAttemptAt = next;
      } else {
        refined.status = 'pending';
      }
      if (activity.lastFailure?.message) refined.lastError = { message: activity.lastFailure.message };
    } else if (name === 'deliverWebhook' && view.webhook !== undefined) {
      refined.webhook = { ...view.webhook, attempts: Math.max(view.webhook.attempts, attemptsStarted) };
    }
  }
  return refined;
}
