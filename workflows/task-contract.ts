/**
 * The contract between the API, the worker and the task workflow: names, input and state types,
 * the signal and the query. Deterministic and free of I/O, so the workflow bundle can import it.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { defineSearchAttributeKey } from '@temporalio/common';

export const TASK_WORKFLOW_TYPE = 'taskWorkflow';
export const DEFAULT_TASK_QUEUE = 'asyncqueue-tasks';

/**
 * Schedules of AsyncQueue are Temporal Schedules named `aqs-<id>`: schedules of other programs in
 * the namespace are not ours to show. A run's task id is then `aqs-<id>-<time>`.
 */
export const SCHEDULE_ID_PREFIX = 'aqs-';

/** Every task's workflow id is derived from its task id, so one task is one workflow. */
export const WORKFLOW_ID_PREFIX = 'task-';
export function workflowIdForTask(taskId: string): string {
  return `${WORKFLOW_ID_PREFIX}${taskId}`;
}

export { TASK_STATUSES, TERMINAL_STATUSES, isTerminal, type TaskStatus } from './task-status.js';
import type { TaskStatus } from './task-status.js';
import type { AttemptRecord } from './attempt-record.js';
import type { TaskFlowControl } from './flow-control-contract.js';
import type { StagedSlot } from './staged-attempt-contract.js';

/**
 * `TaskStatus` search attribute (Keyword). The workflow keeps it current for the phases it sees
 * itself: `scheduled`, `running` (the whole callback phase: pending, running or retrying, which
 * only the server's pending-activity state tells apart), `succeeded`, `failed`, `cancelled`.
 */
export const TASK_STATUS_SEARCH_ATTRIBUTE = defineSearchAttributeKey('TaskStatus', 'KEYWORD');
/** The `TaskStatus` value a status is indexed as (pending and retrying are `running` there). */
export function indexedTaskStatus(status: TaskStatus): string {
  return status === 'pending' || status === 'retrying' ? 'running' : status;
}

/**
 * The `TaskStatus` value from an accepted cancel until the task ends (as `cancelled`, or as the
 * outcome an already finished call fixed): operators and the list see that a cancel is under way.
 */
export const CANCELLING_INDEXED_STATUS = 'cancelling';

/**
 * `TaskLabels` search attribute (KeywordList): the task's `labels`, set when its workflow starts and
 * never changed, so the list, bulk actions and the Temporal UI filter on them (`TaskLabels = 'x'`
 * matches tasks carrying label `x`).
 */
export const TASK_LABELS_SEARCH_ATTRIBUTE = defineSearchAttributeKey('TaskLabels', 'KEYWORD_LIST');
/**
 * `FlowControlKey` search attribute (Keyword): the task's `flowControl.key`, set when its workflow
 * starts, so bulk actions can select a key's tasks.
 */
export const FLOW_CONTROL_KEY_SEARCH_ATTRIBUTE = defineSearchAttributeKey('FlowControlKey', 'KEYWORD');

/** Every search attribute the namespace must have (dev server boot, cluster setup, API and worker boot). */
export const SEARCH_ATTRIBUTES = [
  { name: 'TaskStatus', type: 'Keyword' },
  { name: 'TaskLabels', type: 'KeywordList' },
  { name: 'FlowControlKey', type: 'Keyword' },
] as const;

/** Labels: at most this many per task, each 1–64 of `A-Z a-z 0-9 . _ : = / -`. */
export const MAX_LABELS = 10;
export const LABEL_PATTERN = '^[A-Za-z0-9._:=/-]{1,64}$';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export { CALLBACK_METHODS, DEFAULT_CALLBACK_METHOD, methodHasBody, type CallbackMethod } from './callback-method.js';
import type { CallbackMethod } from './callback-method.js';

/** Retry and timing policy, fixed at creation so replays of one task always see the same values. */
export interface TaskPolicy {
  retryInitialIntervalMs: number;
  retryMaximumIntervalMs: number;
  heartbeatTimeoutMs: number;
  webhookTimeoutMs: number;
  webhookRetryInitialIntervalMs: number;
  webhookRetryMaximumIntervalMs: number;
  webhookRetryDurationMs: number;
  /**
   * How long a task's end (`succeeded`, `failed`, `cancelled`) may wait for its webhook before the
   * list, bulk filters and the Temporal UI are told: a webhook delivered within it carries the end
   * into visibility with the workflow's close (one visibility write instead of two); a slower one
   * has its worker ask for the end to be published (`publishEndSignal`). Absent in inputs from
   * before it (and 0): the end is published at once.
   */
  listStatusDelayMs?: number;
}

export interface TaskInput {
  id: string;
  callbackUrl: string;
  /** Absent in tasks created before `method` existed: those call with `POST`. */
  method?: CallbackMethod;
  payload: JsonValue;
  webhookUrl: string | null;
  retries: number;
  timeoutSeconds: number;
  delaySeconds: number;
  headers: Record<string, string>;
  createdAt: string;
  policy: TaskPolicy;
  /** Absent on tasks created before labels existed: none. */
  labels?: string[];
  /** The task this one replays (`POST /v1/tasks/{id}/replay`). */
  replayOf?: string;
  /**
   * Tasks created before tokens were derived (activities/task-token.ts) carried their token here,
   * in clear in the history. No longer set, and ignored: the worker derives every task's token.
   */
  taskToken?: string;
  /** A run of this schedule (workflows/scheduled-input.ts). */
  scheduleId?: string;
  /** Flow control (flow-control-contract.ts): each attempt waits for a slot of the key. */
  flowControl?: TaskFlowControl;
  /** 1–5, lower first among the waiters of one key; absent in older histories (3). */
  priority?: number;
}

/**
 * The input a schedule's action carries: one input for every run, so no run's id or creation
 * time can be in it. Each run's workflow id is the action's plus the time Temporal appends
 * (`task-aqs-nightly-2026-12-02T06:00:00Z`); the workflow derives `id` and `createdAt` from its
 * own info (scheduled-input.ts). Only such inputs lack them, so older histories replay unchanged.
 */
export type ScheduledTaskInput = Omit<TaskInput, 'id' | 'createdAt'> & {
  scheduleId: string;
  id?: undefined;
  createdAt?: undefined;
};

/** What an app sees when a task fails or is cancelled. */
export interface TaskError {
  code: string;
  message: string;
  statusCode?: number;
}

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface WebhookState {
  status: WebhookDeliveryStatus;
  attempts: number;
  statusCode?: number;
  error?: string;
  deliveredAt?: string;
}

/** What a callee reports while it works (`POST /v1/tasks/{id}/progress`). */
export interface ProgressUpdate {
  percent?: number;
  message?: string;
  data?: JsonValue;
  /**
   * When the callee reported it. The API coalesces reports (at most one signal per task per
   * interval), so this can be earlier than the signal. Absent in older histories.
   */
  reportedAt?: string;
}

export interface TaskProgress extends ProgressUpdate {
  updatedAt: string;
}

/** The workflow's own view of its task; the query returns it and the workflow ends with it. */
export interface TaskState {
  id: string;
  status: TaskStatus;
  callbackUrl: string;
  /** Absent in tasks created before `method` existed (they call with `POST`); the API fills it in. */
  method?: CallbackMethod;
  webhookUrl: string | null;
  retries: number;
  timeout: number;
  delay: number;
  createdAt: string;
  updatedAt: string;
  attempts: number;
  /** Set when the task has labels; the API shows `[]` otherwise. */
  labels?: string[];
  replayOf?: string;
  result?: JsonValue;
  error?: TaskError;
  webhook?: WebhookState;
  progress?: TaskProgress;
  /**
   * When `retrying`: when the next attempt starts, and why the previous one failed. The API reads
   * them from the server's pending-activity state while Temporal's retry policy waits; the
   * workflow sets them itself while its own backoff timer waits, after an attempt that awaited
   * completion (which that state does not show).
   */
  nextAttemptAt?: string;
  lastError?: { message: string };
  /** Set on the runs of a schedule: the schedule's id (without Temporal's `aqs-` prefix). */
  scheduleId?: string;
  /** 1–5 (CONTRACT v2); absent for tasks created before priorities existed. */
  priority?: number;
  /** The task's flow-control key, and whether it waits for a slot of it. */
  flowControl?: { key: string; waiting: boolean };
}

/**
 * Memo kept current by the workflow at each status change: the task's view without its `result`
 * and without `progress.data`, so lists and reads of a task whose worker is away need no query
 * (results and progress data can be large, and every memo upsert is a history event and a
 * visibility write that carries the whole memo).
 */
export type TaskMemo = Omit<TaskState, 'result' | 'progress'> & { progress?: Omit<TaskProgress, 'data'> };
export const TASK_MEMO_KEY = 'task';

export interface CancelRequest {
  reason?: string;
  /** Callback attempts started when the API sent the cancel (the workflow cannot see retries). */
  attemptsStarted?: number;
}

export const cancelTaskSignal = defineSignal<[CancelRequest]>('cancel');
export const progressSignal = defineSignal<[ProgressUpdate]>('progress');
/** From the webhook's worker: the webhook is taking longer than `listStatusDelayMs`; publish the end now. */
export const publishEndSignal = defineSignal('publishEnd');
export const taskStateQuery = defineQuery<TaskState>('taskState');

/** The failure type a workflow ends with when its task failed; details[0] is the final TaskState. */
export const TASK_FAILED_ERROR_TYPE = 'TaskFailed';

// Outgoing request classification: the activities throw ApplicationFailures of these types.
export const CallbackErrorType = {
  HttpStatus: 'CallbackHttpStatus',
  Timeout: 'CallbackTimeout',
  Network: 'CallbackNetworkError',
  ResponseTooLarge: 'CallbackResponseTooLarge',
  DestinationBlocked: 'DestinationBlocked',
  /** The callee reported failure through `POST /v1/tasks/{id}/fail`. */
  ReportedFailure: 'CallbackReportedFailure',
  /** The worker cut the call off on the task's cancel (activities/held-calls.ts). */
  CancelRequested: 'CallbackCancelRequested',
} as const;

/** Details the activities attach to a failure, so the workflow can report attempts and status. */
export interface AttemptFailureDetails {
  attempt: number;
  statusCode?: number;
  code: string;
  /** The attempt's record, when the failure is final (attempt-record.ts). Absent in older histories. */
  record?: AttemptRecord;
  /** The callee's `Retry-After`, in ms, when it gave one. */
  retryAfterMs?: number;
  /**
   * A flow-controlled attempt's worker gave its slot back (as on `CallbackSucceeded`): the
   * workflow sends no release of its own. Absent in older histories.
   */
  slotReleased?: true;
}

/** The callee answered 2xx (a 202 without `AsyncQueue-Completion: async` included). */
export interface CallbackSucceeded {
  /** Absent in histories recorded before the `accepted` outcome existed. */
  kind?: 'succeeded';
  attempt: number;
  statusCode: number;
  result: JsonValue;
  /** The attempt's record (attempt-record.ts). Absent in older histories. */
  record?: AttemptRecord;
  /**
   * A flow-controlled attempt's worker gave its slot back, and the limiter took it: the workflow
   * need not send its own release. Absent: it sends it (and in histories before this existed).
   */
  slotReleased?: true;
}

/**
 * The callee answered `202` with `AsyncQueue-Completion: async`: it took the work and ends the
 * attempt later through `/complete` or `/fail`. The workflow then waits for that in an
 * `awaitCompletion` activity, which no worker holds, so nothing in any process keeps it alive.
 */
export interface CallbackAccepted {
  kind: 'accepted';
  attempt: number;
  /** How long the call took: the attempt's `timeout` covers the call and the wait together. */
  elapsedMs: number;
  /** The call's record, outcome `awaiting_completion`; the `awaitCompletion` activity ends it. */
  record?: AttemptRecord;
}

export type CallbackOutcome = CallbackSucceeded | CallbackAccepted;

/** What `/complete` hands to the attempt that awaits completion. */
export interface AsyncCompletion {
  result: JsonValue;
}

export interface AwaitCompletionRequest {
  taskId: string;
  attempt: number;
}

export interface WebhookOutcome {
  attempt: number;
  statusCode: number;
  /** The attempt's record (attempt-record.ts). Absent in older histories. */
  record?: AttemptRecord;
}

export type WebhookEventType = 'task.succeeded' | 'task.failed' | 'task.cancelled';

export interface WebhookEvent {
  type: WebhookEventType;
  timestamp: string;
  taskId: string;
  status: TaskStatus;
  attempts: number;
  result?: JsonValue;
  error?: TaskError;
}

export interface CallbackRequest {
  taskId: string;
  url: string;
  /** Absent in older histories: `POST`. */
  method?: CallbackMethod;
  payload: JsonValue;
  headers: Record<string, string>;
  timeoutMs: number;
  /**
   * Attempts already made before this activity was scheduled (attempts that awaited completion
   * and then failed or timed out): `AsyncQueue-Attempt` counts on from there.
   */
  attemptOffset?: number;
  /** Older histories carry the task's token here; the worker ignores it and derives the token. */
  taskToken?: string;
  /** A flow-controlled attempt's slot, which the worker gives back once the call is over. */
  flowSlot?: {
    key: string;
    request: number;
    reportStart?: boolean;
    /** The attempt is staged (`callCallbackStaged`): it parks in its worker, in this order, until handed a slot. */
    staged?: StagedSlot;
  };
}

/**
 * A `202` is a success like any 2xx, unless it carries `AsyncQueue-Completion: async`: then the
 * callee has taken the work and ends the attempt later with `/complete` or `/fail`.
 */
export const ASYNC_ACCEPTED_STATUS = 202;
export const ASYNC_COMPLETION_HEADER = 'asyncqueue-completion';
export const ASYNC_COMPLETION_VALUE = 'async';

/**
 * Each worker polls a task queue of its own besides the shared one, named as its worker identity,
 * so that the server's pending-activity state (`lastWorkerIdentity`) says where to send the
 * `abortHeldCall` of a cancel (activities/held-calls.ts).
 */
export const HOLDER_QUEUE_MARK = '-holder-';
export function holderTaskQueue(taskQueue: string, workerId: string): string {
  return `${taskQueue}${HOLDER_QUEUE_MARK}${workerId}`;
}

export interface HeldCallRequest {
  taskId: string;
}

/** Activity type names the API looks for in a task's pending activities. */
export const CALLBACK_ACTIVITY = 'callCallback';

/**
 * The activity id of a `callCallback` scheduled after `attempts` attempts were made (attempts that
 * awaited completion); the first schedule keeps the SDK's own id. `callbackAttemptsBefore` reads it.
 */
export function callbackActivityIdAfter(attempts: number): string {
  return `${CALLBACK_ACTIVITY}-after-${attempts}`;
}
export function callbackAttemptsBefore(activityId: string | null | undefined): number {
  const match = /^callCallback(?:Staged)?-after-(\d+)(?:-park-\d+)?$/.exec(activityId ?? '');
  return match ? Number(match[1]) : 0;
}
export const AWAIT_COMPLETION_ACTIVITY = 'awaitCompletion';
export const WEBHOOK_ACTIVITY = 'deliverWebhook';

export interface WebhookRequest {
  taskId: string;
  url: string;
  event: WebhookEvent;
  timeoutMs: number;
  /** The task's end is not published yet: after this long, or on a retry, the worker asks for it. */
  publishEndAfterMs?: number;
}

/** `webhook-id` values: stable across retries of one message, distinct for callback and webhook. */
export function callbackMessageId(taskId: string): string {
  return `msg_${taskId}_callback`;
}
export function webhookMessageId(taskId: string): string {
  return `msg_${taskId}_webhook`;
}
