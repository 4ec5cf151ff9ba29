/**
 * Tasks on Temporal: create starts a workflow, read queries it, list searches visibility, cancel
 * signals it. The API's routes reach Temporal only through this service.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import {
  TASK_MEMO_KEY,
  TASK_STATUS_SEARCH_ATTRIBUTE,
  cancelTaskSignal,
  isTerminal,
  progressSignal,
  type ProgressUpdate,
  type TaskInput,
  type TaskPolicy,
  type TaskState,
  type TaskStatus,
} from '../../../workflows/task-contract.js';
import { replayInput, type ReplayOverrides } from '../../../workflows/task-start.js';
import { readTaskInput } from '../../../activities/task-history.js';
import { FlowControlService } from '../flow-control/flow-control-service.js';
import {
  PayloadTooLargeError,
  TaskAlreadyEndedError,
  TaskNotEndedError,
  TaskNotFoundError,
  TemporalUnavailableError,
} from '../../shared/errors.js';
import { TemporalCalls } from '../temporal/temporal-calls.js';
import { AsyncCompletions, type AttemptOutcome } from './async-completion.js';
import { attemptsFromHistory, type AttemptView } from './attempt-history.js';
import { taskIdForKey } from './idempotency.js';
import { nextCursor, pageToken, refuseUnusableCursor } from '../temporal/list-cursor.js';
import { closedExecutionStatus, decodePayload, taskMemo, tasksQuery } from './list-query.js';
import { ProgressCoalescer } from './progress-coalescer.js';
import { closedTaskState } from './closed-task.js';
import { hashedRequest, prepareStart, type NewTask, type PreparedTask } from './prepared-task.js';
import { TaskEndWatch, type WatchStats } from './task-end-watch.js';
import { TaskStarter, type EagerStarts } from './task-starter.js';
import { stoppedWithEnd, withUnpublishedEnd } from './unpublished-end.js';
import { memoFromStored, type AnyTaskMemo } from '../../../workflows/task-memo.js';
import { closedView, withDefaults, type TaskView } from './task-views.js';
import { timestampToIso, withPendingActivities } from '../../../activities/task-phase.js';

export type { TaskView } from './task-views.js';
export type { NewTask, PreparedTask } from './prepared-task.js';

/** Progress `data` is stored with every report the workflow receives: kept small (see progress-coalescer.ts). */
export const MAX_PROGRESS_DATA_BYTES = 4 * 1024;

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
  /** Long polls for `?wait` at once (task-end-watch.ts). */
  maxWaitPolls: number;
  /** Authenticates list cursors; every API process of one deployment must use the same key. */
  cursorKey: Buffer;
  /** At most one progress signal per task per this interval (progress-coalescer.ts). */
  progressIntervalMs: number;
  /** The largest `/complete` result, encoded: the same limit as a callback's answer. */
  maxResultBytes: number;
  onProgressDropped?: (taskId: string, err: unknown) => void;
  /**
   * A client on the connection of a worker in this process (`npm start`) for the task queue, when
   * there is one: tasks start through it with Temporal's eager start, the first workflow task
   * handed to that worker in the start's answer instead of through a task-queue round trip.
   */
  eagerStarts?: EagerStarts;
}

export class TaskService {
  /** Shared with the schedule service: one deadline, error translation and availability for both. */
  readonly calls: TemporalCalls;
  private readonly completions: AsyncCompletions;
  private readonly progress: ProgressCoalescer;
  private readonly endWatch: TaskEndWatch;
  private readonly starter: TaskStarter;
  /** The flow-control keys' limiters (flow-control-service.ts), on the same Temporal calls. */
  readonly flowControl: FlowControlService;

  constructor(
    client: Client,
    private readonly options: TaskServiceOptions,
  ) {
    this.calls = new TemporalCalls(client, options);
    this.completions = new AsyncCompletions(this.calls, options.maxResultBytes);
    this.endWatch = new TaskEndWatch(client, { namespace: options.namespace, maxPolls: options.maxWaitPolls });
    this.flowControl = new FlowControlService(this.calls, options);
    this.starter = new TaskStarter(this.calls, this.flowControl, options, (id) => this.get(id));
    this.progress = new ProgressCoalescer({
      intervalMs: options.progressIntervalMs,
      send: (taskId, update) => this.signalProgress(taskId, update),
      onDeferredError: (taskId, err) => options.onProgressDropped?.(taskId, err),
    });
  }

  /**
   * Starts a new task. With an idempotency key the id is derived from it, and a repeat of the same
   * request returns the existing task (`created: false`) instead of starting another.
   */
  async create(task: NewTask, idempotency?: { caller: string; key: string }): Promise<{ task: TaskView; created: boolean }> {
    return this.start(this.prepare(task, idempotency));
  }

  /**
   * Everything a create decides before it calls Temporal: the id, the workflow's input and memo,
   * and the size check (413). A batch prepares every item before it starts any (batch-create.ts).
   */
  prepare(task: NewTask, idempotency?: { caller: string; key: string }): PreparedTask {
    const id = idempotency !== undefined ? taskIdForKey(idempotency.caller, idempotency.key) : randomUUID();
    const input: TaskInput = {
      id,
      callbackUrl: task.callbackUrl,
      method: task.method,
      payload: task.payload,
      webhookUrl: task.webhookUrl,
      retries: task.retries,
      timeoutSeconds: task.timeout,
      delaySeconds: task.delay,
      headers: task.headers,
      createdAt: new Date().toISOString(),
      policy: this.options.policy,
      ...(task.labels.length > 0 ? { labels: task.labels } : {}),
      ...(task.flowControl !== undefined ? { flowControl: task.flowControl } : {}),
      ...(task.priority !== undefined ? { priority: task.priority } : {}),
    };
    return prepareStart(input, hashedRequest(task), idempotency, true);
  }

  /** Starts a prepared task's workflow, or finds the task an earlier request with its key made (task-starter.ts). */
  async start(prepared: PreparedTask): Promise<{ task: TaskView; created: boolean }> {
    return this.starter.start(prepared);
  }

  /**
   * A new task with the original's input (read from its history, so an ended task with no worker
   * running replays too), `replayOf` pointing back. The original is only read.
   */
  async replay(
    originalId: string,
    overrides: ReplayOverrides,
    idempotency?: { caller: string; key: string },
  ): Promise<{ task: TaskView; created: boolean }> {
    const description = await this.calls.describe(originalId);
    if (description.status.name === 'RUNNING') throw new TaskNotEndedError(originalId);
    const original = await this.calls.rpc(() => readTaskInput(this.calls.client, originalId, description.runId), {
      taskId: originalId,
    });
    const id = idempotency !== undefined ? taskIdForKey(idempotency.caller, idempotency.key) : randomUUID();
    const input = replayInput(original, {
      id,
      createdAt: new Date().toISOString(),
      policy: this.options.policy,
      overrides,
    });
    return this.start(prepareStart(input, { replayOf: originalId, ...overrides }, idempotency, false));
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
  private async read(id: string, options: { askWorker: boolean }): Promise<TaskView> {
    return withDefaults(await this.readStored(id, options));
  }

  private async readStored(id: string, { askWorker }: { askWorker: boolean }): Promise<TaskState> {
    const description = await this.calls.describe(id);
    const memo = taskMemo(description);
    if (description.status.name === 'RUNNING') {
      const state = askWorker
        ? await this.calls.queryState(id).catch((err: unknown) => {
            if (err instanceof TemporalUnavailableError) throw err;
            return undefined; // no worker answered in time: what the server stores is the best we have
          })
        : undefined;
      const pending = description.raw.pendingActivities ?? [];
      const view = withPendingActivities(state ?? memo, pending);
      return withUnpublishedEnd(this.calls, id, description.runId, view, pending);
    }
    return closedTaskState(this.calls, id, description, memo);
  }

  async list(query: {
    status?: TaskStatus;
    labels?: string[];
    scheduleId?: string;
    limit: number;
    cursor?: string;
  }): Promise<TaskListPage> {
    const response = await this.calls
      .rpc(() =>
        this.calls.client.workflowService.listWorkflowExecutions({
          namespace: this.options.namespace,
          pageSize: query.limit,
          query: tasksQuery({
            ...(query.status !== undefined ? { status: query.status } : {}),
            ...(query.labels !== undefined ? { labels: query.labels } : {}),
            ...(query.scheduleId !== undefined ? { scheduleId: query.scheduleId } : {}),
          }),
          nextPageToken: pageToken(this.options.cursorKey, query.cursor),
        }),
      )
      .catch(refuseUnusableCursor(query.cursor));
    const views = await Promise.all(
      (response.executions ?? []).map(async (execution) => {
        const view = await this.listedView(execution);
        return view === undefined ? undefined : withDefaults(view);
      }),
    );
    return {
      tasks: views.filter(
        (view): view is TaskView => view !== undefined && (query.status === undefined || view.status === query.status),
      ),
      nextCursor: nextCursor(this.options.cursorKey, response.nextPageToken),
    };
  }

  private async listedView(execution: temporal.api.workflow.v1.IWorkflowExecutionInfo): Promise<TaskState | undefined> {
    // A `task-*` workflow of another program in the namespace has no task memo: not ours to list.
    const stored = decodePayload<AnyTaskMemo>(execution.memo?.fields?.[TASK_MEMO_KEY]);
    if (stored === undefined) return undefined;
    const memo = memoFromStored(stored, execution.execution?.workflowId ?? '', timestampToIso(execution.startTime));
    const closed = closedExecutionStatus(execution.status);
    if (closed !== undefined) {
      if (closed === 'Completed' || (closed === 'Failed' && memo.status === 'failed')) return memo;
      // Stopped from outside before its end was published: the end it had, as GET shows it; a
      // history it could not read leaves the memo's view, and a list carries no result.
      const runId = execution.execution?.runId ?? undefined;
      const { result: _result, ...ended }: TaskState = await stoppedWithEnd(this.calls, memo.id, runId, memo).catch(() => memo);
      return closedView(ended, {
        execution: closed,
        closedAt: timestampToIso(execution.closeTime),
        indexedStatus: decodePayload<string>(execution.searchAttributes?.indexedFields?.[TASK_STATUS_SEARCH_ATTRIBUTE.name]),
      });
    }
    if (isTerminal(memo.status)) return memo;
    // Pending, running and retrying share one indexed value; the server's activity state tells them apart.
    const description = await this.calls.describe(memo.id).catch(() => undefined);
    const pending = description?.raw.pendingActivities ?? [];
    const view = withPendingActivities(memo, pending);
    if (description === undefined) return view;
    // A list answers with what it has: a history it could not read leaves the memo's view. Its
    // views carry no result (memos do not), this one neither.
    const { result: _result, ...ended } = await withUnpublishedEnd(this.calls, memo.id, description.runId, view, pending).catch(
      () => view,
    );
    return ended;
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

  /**
   * Every callback and webhook attempt, from the workflow's history and the server's
   * pending-activity state: no worker is asked (attempt-history.ts).
   */
  async attempts(id: string): Promise<AttemptView[]> {
    const description = await this.calls.describe(id);
    const history = await this.calls.rpc(() => this.calls.handle(id, description.runId).fetchHistory(), { taskId: id });
    const running = description.status.name === 'RUNNING';
    return attemptsFromHistory(history.events ?? [], running ? (description.raw.pendingActivities ?? []) : []);
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

  /**
   * The task's view once it has ended, or after `timeoutMs` its current one (`?wait`). One long
   * poll per waited-for task, shared by all its waiters (task-end-watch.ts). Undefined when
   * `signal` fired first (the client left) or the API is shutting down.
   */
  async waitForEnd(id: string, timeoutMs: number, signal?: AbortSignal): Promise<TaskView | undefined> {
    const outcome = await this.endWatch.wait(id, timeoutMs, signal);
    if (outcome === 'aborted' || outcome === 'closing') return undefined;
    return this.get(id);
  }

  /** Waiting clients and their long polls, for /metrics and the load measurement. */
  waitStats(): WatchStats {
    return this.endWatch.stats();
  }

  /** Temporal is reachable and answers for our namespace. */
  async ready(): Promise<boolean> {
    return this.calls.ready();
  }

  /** Answers every `?wait` now (current views), so that shutdown does not wait them out. */
  async endWaits(): Promise<void> {
    await this.endWatch.close();
  }

  /** Sends the progress reports held back, then closes the Temporal side. */
  async close(): Promise<void> {
    await this.endWatch.close();
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
}
