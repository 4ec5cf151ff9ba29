/**
 * The contract between the API, the worker and the task workflow: names, input and state types,
 * the signal and the query. Deterministic and free of I/O, so the workflow bundle can import it.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { defineSearchAttributeKey } from '@temporalio/common';

export const TASK_WORKFLOW_TYPE = 'taskWorkflow';
export const DEFAULT_TASK_QUEUE = 'asyncqueue-tasks';

/** Every task's workflow id is derived from its task id, so one task is one workflow. */
export const WORKFLOW_ID_PREFIX = 'task-';
export function workflowIdForTask(taskId: string): string {
  return `${WORKFLOW_ID_PREFIX}${taskId}`;
}

export const TASK_STATUSES = [
  'scheduled',
  'pending',
  'running',
  'retrying',
  'succeeded',
  'failed',
  'cancelled',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const TERMINAL_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];
export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

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
 * outcome an already finished call fixed): workers look for it to cut held calls off at once.
 */
export const CANCELLING_INDEXED_STATUS = 'cancelling';

export const SEARCH_ATTRIBUTES = [{ name: 'TaskStatus', type: 'Keyword' }] as const;

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Retry and timing policy, fixed at creation so replays of one task always see the same values. */
export interface TaskPolicy {
  retryInitialIntervalMs: number;
  retryMaximumIntervalMs: number;
  heartbeatTimeoutMs: number;
  webhookTimeoutMs: number;
  webhookRetryInitialIntervalMs: number;
  webhookRetryMaximumIntervalMs: number;
  webhookRetryDurationMs: number;
}

export interface TaskInput {
  id: string;
  callbackUrl: string;
  payload: JsonValue;
  webhookUrl: string | null;
  retries: number;
  timeoutSeconds: number;
  delaySeconds: number;
  headers: Record<string, string>;
  createdAt: string;
  policy: TaskPolicy;
  /**
   * Sent to the callback as `AsyncQueue-Task-Token`: lets the callee report progress and complete
   * the task without an API key. Absent in tasks created before tokens existed.
   */
  taskToken?: string;
}

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
}

export interface TaskProgress extends ProgressUpdate {
  updatedAt: string;
}

/** The workflow's own view of its task; the query returns it and the workflow ends with it. */
export interface TaskState {
  id: string;
  status: TaskStatus;
  callbackUrl: string;
  webhookUrl: string | null;
  retries: number;
  timeout: number;
  delay: number;
  createdAt: string;
  updatedAt: string;
  attempts: number;
  result?: JsonValue;
  error?: TaskError;
  webhook?: WebhookState;
  progress?: TaskProgress;
}

/**
 * Memo kept current by the workflow: the task's view without its `result` and `progress`, so
 * lists and reads of a task whose worker is away need no query (results can be large, progress
 * frequent; memo updates are history events).
 */
export type TaskMemo = Omit<TaskState, 'result' | 'progress'>;
export const TASK_MEMO_KEY = 'task';

export interface CancelRequest {
  reason?: string;
  /** Callback attempts started when the API sent the cancel (the workflow cannot see retries). */
  attemptsStarted?: number;
}

export const cancelTaskSignal = defineSignal<[CancelRequest]>('cancel');
export const progressSignal = defineSignal<[ProgressUpdate]>('progress');
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
  /** The worker's cancel watch cut the call off (activities/cancel-watch.ts). */
  CancelRequested: 'CallbackCancelRequested',
} as const;

/** Details the activities attach to a failure, so the workflow can report attempts and status. */
export interface AttemptFailureDetails {
  attempt: number;
  statusCode?: number;
  code: string;
}

export interface CallbackOutcome {
  attempt: number;
  statusCode: number;
  result: JsonValue;
}

export interface WebhookOutcome {
  attempt: number;
  statusCode: number;
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
  payload: JsonValue;
  headers: Record<string, string>;
  timeoutMs: number;
  taskToken?: string;
}

/** A callback answering this keeps its attempt open until `/complete` or `/fail` (or the timeout). */
export const ASYNC_ACCEPTED_STATUS = 202;

export interface WebhookRequest {
  taskId: string;
  url: string;
  event: WebhookEvent;
  timeoutMs: number;
}

/** `webhook-id` values: stable across retries of one message, distinct for callback and webhook. */
export function callbackMessageId(taskId: string): string {
  return `msg_${taskId}_callback`;
}
export function webhookMessageId(taskId: string): string {
  return `msg_${taskId}_webhook`;
}
