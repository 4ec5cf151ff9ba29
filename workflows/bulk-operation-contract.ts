/**
 * The contract of bulk operations (`POST /v1/tasks/bulk`) between the API, the worker and
 * `bulkOperationWorkflow`: names, input, state and query. Deterministic, free of I/O.
 */
import { defineQuery } from '@temporalio/workflow';
import type { TaskPolicy, TaskStatus } from './task-contract.js';

export const BULK_OPERATION_WORKFLOW_TYPE = 'bulkOperationWorkflow';
export const OPERATION_WORKFLOW_ID_PREFIX = 'operation-';
export function workflowIdForOperation(operationId: string): string {
  return `${OPERATION_WORKFLOW_ID_PREFIX}${operationId}`;
}
export const OPERATION_MEMO_KEY = 'operation';

export const MAX_BULK_IDS = 1000;
/** The operation view keeps the first few per-task failures; the counts cover all of them. */
export const MAX_OPERATION_ERRORS = 10;
/** Tasks one activity handles: one visibility page, or one slice of the ids. */
export const OPERATION_PAGE_SIZE = 100;

export type BulkAction = 'cancel' | 'replay';
export type OperationLifecycle = 'running' | 'completed' | 'failed';

/** The filter as the request gave it: shown in the operation's view. */
export interface OperationFilter {
  status?: TaskStatus;
  label?: string | string[];
  createdAfter?: string;
  createdBefore?: string;
  flowControlKey?: string;
}

export interface OperationError {
  taskId: string;
  code: string;
  message: string;
}

export interface OperationCounts {
  matched: number;
  succeeded: number;
  failed: number;
  skipped: number;
}

/** How far the operation got; carried across continue-as-new. */
export interface OperationProgress extends OperationCounts {
  errors: OperationError[];
  /** The next visibility page (base64 of Temporal's page token); absent before the first. */
  pageToken?: string;
  /** The next index into `ids`. */
  offset?: number;
}

export interface BulkOperationInput {
  id: string;
  action: BulkAction;
  createdAt: string;
  /** With `filter`: the visibility query the API built from it (it matches tasks created before the operation). */
  filter?: OperationFilter;
  query?: string;
  /**
   * The status the filter asks for where the index cannot tell it apart (`pending`, `running` and
   * `retrying` share one indexed value): the activity checks each task's own.
   */
  status?: TaskStatus;
  ids?: string[];
  /** The retry policy replays get: the deployment's, as the API that accepted the operation had it. */
  policy: TaskPolicy;
  progress?: OperationProgress;
  /** Tests only (the API never sets them): smaller pages and runs, to reach continue-as-new with a few tasks. */
  pageSize?: number;
  pagesPerRun?: number;
}

/** What `GET /v1/operations/{id}` shows; the query returns it and the memo holds it. */
export interface OperationState extends OperationCounts {
  id: string;
  action: BulkAction;
  state: OperationLifecycle;
  createdAt: string;
  endedAt: string | null;
  filter?: OperationFilter;
  /** How many ids the request listed. */
  ids?: number;
  errors: OperationError[];
  error?: { code: string; message: string };
}

/** One activity's share of the work: a visibility page, or a slice of the ids. */
export interface OperationPageRequest {
  operationId: string;
  action: BulkAction;
  policy: TaskPolicy;
  query?: string;
  pageSize?: number;
  status?: TaskStatus;
  pageToken?: string;
  ids?: string[];
}

export interface OperationPageResult extends OperationCounts {
  errors: OperationError[];
  /** With a query: the next page's token, null after the last page. */
  nextPageToken: string | null;
}

export const operationStateQuery = defineQuery<OperationState>('operationState');

/** The reason a bulk cancel gives: also how a retried activity knows a task's cancel was its own. */
export function bulkCancelReason(operationId: string): string {
  return `cancelled by bulk operation ${operationId}`;
}
