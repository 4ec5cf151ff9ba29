/**
 * Waiting for a task to end (`?wait=N`) without a call per waiting client: each task that anyone
 * waits for has ONE long poll on its workflow history (GetWorkflowExecutionHistory with
 * `waitNewEvent`), over the API's one gRPC connection, shared by every client waiting for it, and
 * aborted as soon as the last of them leaves. No worker and no polling loop is involved.
 *
 * A task ends before its workflow closes when it has a webhook (the workflow goes on delivering
 * it, for hours if the receiver is down), so the poll reads every new event, not only the close
 * event: the workflow upserts its memo at each status change, and the upsert that carries a final
 * status is the moment the task has ended; so is the webhook's scheduling (a task with a webhook
 * publishes its end with the webhook's outcome, or when the webhook is slow: TaskPolicy's
 * `listStatusDelayMs`), and the webhook goes out only once the task has ended.
 *
 * Temporal's frontend admits a limited number of concurrent long polls per namespace, per API
 * method and per frontend instance (`frontend.namespaceCount`, 1200 by default); more are refused
 * with RESOURCE_EXHAUSTED. So at most `maxPolls` run at once in this process; tasks beyond that
 * wait for a free poll (their clients still get the current view when their time is up).
 */
import type { Client } from '@temporalio/client';
import proto, { type temporal } from '@temporalio/proto';
import {
  TASK_MEMO_KEY,
  WEBHOOK_ACTIVITY,
  isTerminal,
  workflowIdForTask,
  type TaskMemo,
} from '../../../workflows/task-contract.js';
import { decodePayload } from './list-query.js';
import { AsyncQueueError } from '../../shared/errors.js';

const { HistoryEventFilterType } = proto.temporal.api.enums.v1;

/** Longer than the server's own long-poll interval (20 s), which answers an empty page first. */
const POLL_DEADLINE_MS = 30_000;
/** After a failed poll (Temporal away), the next try waits this long. */
const RETRY_AFTER_FAILURE_MS = 1_000;

/** `closing`: the API is shutting down; the waiter answers without another Temporal call. */
export type WaitOutcome = 'ended' | 'timeout' | 'aborted' | 'closing';

/** A `GET ?wait` cut short by the API's shutdown: retry (on another process). */
export class WaitInterruptedError extends AsyncQueueError {
  readonly code = 'shutting_down';
  override readonly statusCode = 503;
  override readonly retryAfterSeconds = 1;
  constructor() {
    super('the API is shutting down; retry the wait');
  }
}

export interface TaskEndWatchOptions {
  namespace: string;
  /** Long polls this process runs at once, at most (see above). */
  maxPolls: number;
}

export interface WatchStats {
  /** Tasks with a long poll running now. */
  polling: number;
  /** Tasks waiting for a free poll. */
  queued: number;
  /** Clients waiting, over all tasks. */
  waiters: number;
  /** GetWorkflowExecutionHistory calls made since the start. */
  historyCalls: number;
  /** Of them, calls that failed (not counting aborts), by gRPC status code. */
  failedCalls: Record<string, number>;
}

interface Watch {
  taskId: string;
  waiters: Set<(outcome: WaitOutcome) => void>;
  abort: AbortController;
}

export class TaskEndWatch {
  private readonly watches = new Map<string, Watch>();
  private readonly queue: Watch[] = [];
  /** Polls under way, awaited on close: a call left retrying on a closed connection throws. */
  private readonly running = new Set<Promise<void>>();
  private polling = 0;
  private historyCalls = 0;
  private readonly failedCalls: Record<string, number> = {};
  private closed = false;

  constructor(
    private readonly client: Client,
    private readonly options: TaskEndWatchOptions,
  ) {}

  /**
   * Resolves `ended` as soon as the task has ended, `timeout` after `timeoutMs`, `aborted` when
   * `signal` fires (the client went away). Call it after reading the task once: that read knows
   * the task exists and had not ended.
   */
  wait(taskId: string, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (this.closed || signal?.aborted) return Promise.resolve(signal?.aborted ? 'aborted' : 'closing');
    let watch = this.watches.get(taskId);
    if (watch === undefined) {
      watch = { taskId, waiters: new Set(), abort: new AbortController() };
      this.watches.set(taskId, watch);
      this.schedule(watch);
    }
    const current = watch;
    return new Promise<WaitOutcome>((resolve) => {
      const finish = (outcome: WaitOutcome): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        current.waiters.delete(onEnd);
        if (current.waiters.size === 0) this.drop(current);
        resolve(outcome);
      };
      const onEnd = (outcome: WaitOutcome): void => finish(outcome);
      const onAbort = (): void => finish('aborted');
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      current.waiters.add(onEnd);
    });
  }

  stats(): WatchStats {
    let waiters = 0;
    for (const watch of this.watches.values()) waiters += watch.waiters.size;
    return {
      polling: this.polling,
      queued: this.queue.length,
      waiters,
      historyCalls: this.historyCalls,
      failedCalls: { ...this.failedCalls },
    };
  }

  /**
   * Ends every wait (`closing`: shutdown must not wait out a 60 s wait, nor start a read per
   * waiter on a connection about to close), aborts every poll and waits for the polls to end.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const watch of [...this.watches.values()]) this.settle(watch, 'closing');
    await Promise.allSettled([...this.running]);
  }

  private schedule(watch: Watch): void {
    if (this.polling >= this.options.maxPolls) {
      this.queue.push(watch);
      return;
    }
    this.polling++;
    const polling = this.poll(watch).finally(() => {
      this.running.delete(polling);
      this.polling--;
      const next = this.queue.shift();
      if (next !== undefined && !this.closed) this.schedule(next);
    });
    this.running.add(polling);
  }

  /** The last waiter left: stop polling for this task. */
  private drop(watch: Watch): void {
    if (this.watches.get(watch.taskId) !== watch) return;
    this.watches.delete(watch.taskId);
    const queued = this.queue.indexOf(watch);
    if (queued >= 0) this.queue.splice(queued, 1);
    watch.abort.abort();
  }

  private settle(watch: Watch, outcome: WaitOutcome): void {
    for (const waiter of [...watch.waiters]) waiter(outcome);
    this.drop(watch);
  }

  private async poll(watch: Watch): Promise<void> {
    const { connection } = this.client;
    const { signal } = watch.abort;
    let nextPageToken: Uint8Array | undefined;
    while (!signal.aborted) {
      let response: temporal.api.workflowservice.v1.IGetWorkflowExecutionHistoryResponse;
      try {
        this.historyCalls++;
        response = await connection.withAbortSignal(signal, () =>
          connection.withDeadline(Date.now() + POLL_DEADLINE_MS, () =>
            this.client.workflowService.getWorkflowExecutionHistory({
              namespace: this.options.namespace,
              execution: { workflowId: workflowIdForTask(watch.taskId) },
              waitNewEvent: true,
              historyEventFilterType: HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT,
              skipArchival: true,
              ...(nextPageToken !== undefined ? { nextPageToken } : {}),
            }),
          ),
        );
      } catch (err) {
        if (signal.aborted) return;
        const code = String((err as { code?: unknown }).code ?? 'other');
        this.failedCalls[code] = (this.failedCalls[code] ?? 0) + 1;
        // Temporal away or the task gone: the waiters answer what a read says at their deadline.
        await new Promise((resolve) => setTimeout(resolve, RETRY_AFTER_FAILURE_MS));
        continue;
      }
      if ((response.history?.events ?? []).some(endsTask)) {
        this.settle(watch, 'ended');
        return;
      }
      const token = response.nextPageToken;
      if (token == null || token.length === 0) {
        // No further page: the workflow has closed (its close event is the history's last).
        this.settle(watch, 'ended');
        return;
      }
      nextPageToken = token;
    }
  }
}

/** The memo upsert that gives the task a final status, the webhook's scheduling, or the workflow's close. */
function endsTask(event: temporal.api.history.v1.IHistoryEvent): boolean {
  if (event.activityTaskScheduledEventAttributes?.activityType?.name === WEBHOOK_ACTIVITY) return true;
  const memo = event.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields?.[TASK_MEMO_KEY];
  if (memo != null) {
    const status = decodePayload<TaskMemo>(memo)?.status;
    if (status !== undefined && isTerminal(status)) return true;
  }
  return (
    event.workflowExecutionCompletedEventAttributes != null ||
    event.workflowExecutionFailedEventAttributes != null ||
    event.workflowExecutionCanceledEventAttributes != null ||
    event.workflowExecutionTerminatedEventAttributes != null ||
    event.workflowExecutionTimedOutEventAttributes != null ||
    event.workflowExecutionContinuedAsNewEventAttributes != null
  );
}
