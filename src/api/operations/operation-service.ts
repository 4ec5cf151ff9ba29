/**
 * Bulk operations on Temporal: a bulk request starts one `bulkOperationWorkflow`
 * (workflows/bulk-operation-workflow.ts), which does the work in the worker; a read shows its
 * progress from a query while it runs, from its memo otherwise. Our own workflow rather than
 * Temporal's batch operations: a namespace runs one of those at a time, so a second operator's
 * request would have to be refused, and they cannot replay.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import {
  BULK_OPERATION_WORKFLOW_TYPE,
  OPERATION_MEMO_KEY,
  operationStateQuery,
  workflowIdForOperation,
  type BulkAction,
  type BulkOperationInput,
  type OperationFilter,
  type OperationState,
} from '../../../workflows/bulk-operation-contract.js';
import type { bulkOperationWorkflow } from '../../../workflows/bulk-operation-workflow.js';
import type { TaskPolicy, TaskStatus } from '../../../workflows/task-contract.js';
import { AsyncQueueError, TemporalUnavailableError, ValidationError } from '../../shared/errors.js';
import { TemporalCalls } from '../temporal/temporal-calls.js';
import { tasksQuery } from '../tasks/list-query.js';
import { closedExecutionStatus } from '../tasks/list-query.js';
import { IdempotencyConflictError, isSameRequest, operationIdForKey, requestHash } from '../tasks/idempotency.js';

/** Memo key of the hash of the request an Idempotency-Key started the operation with. */
const REQUEST_MEMO_KEY = 'request';

export class OperationNotFoundError extends AsyncQueueError {
  readonly code = 'operation_not_found';
  override readonly statusCode = 404;
  constructor(readonly operationId: string) {
    super(`operation ${operationId} not found`);
  }
}

/** Statuses that share one indexed value: the activity checks each task's own. */
const CALLBACK_PHASE: ReadonlySet<TaskStatus> = new Set(['pending', 'running', 'retrying']);

export type BulkRequest = { action: BulkAction; filter: OperationFilter } | { action: BulkAction; ids: string[] };

export interface OperationServiceOptions {
  namespace: string;
  taskQueue: string;
  policy: TaskPolicy;
  rpcTimeoutMs: number;
  queryTimeoutMs: number;
}

export class OperationService {
  private readonly calls: TemporalCalls;

  constructor(
    client: Client,
    private readonly options: OperationServiceOptions,
  ) {
    this.calls = new TemporalCalls(client, options);
  }

  /**
   * Starts the operation; with an Idempotency-Key, a repeat of the same request finds the
   * operation the first one started (`created: false`) instead of starting a second.
   */
  async start(
    request: BulkRequest,
    idempotency?: { caller: string; key: string },
  ): Promise<{ operation: OperationState; created: boolean }> {
    const id = idempotency !== undefined ? operationIdForKey(idempotency.caller, idempotency.key) : randomUUID();
    const createdAt = new Date().toISOString();
    const input: BulkOperationInput = { id, action: request.action, createdAt, policy: this.options.policy };
    if ('ids' in request) {
      input.ids = [...new Set(request.ids)];
    } else {
      input.filter = request.filter;
      Object.assign(input, selection(request.action, request.filter, createdAt));
    }
    const state: OperationState = {
      id,
      action: request.action,
      state: 'running',
      createdAt,
      endedAt: null,
      ...(input.filter !== undefined ? { filter: input.filter } : {}),
      ...(input.ids !== undefined ? { ids: input.ids.length } : {}),
      matched: 0,
      succeeded: 0,
      failed: 0,
      skipped: 0,
      errors: [],
    };
    try {
      await this.calls.rpc(() =>
        this.calls.client.workflow.start<typeof bulkOperationWorkflow>(BULK_OPERATION_WORKFLOW_TYPE, {
          taskQueue: this.options.taskQueue,
          workflowId: workflowIdForOperation(id),
          // Keeps an id (and so an idempotency key) taken for as long as the operation is retained.
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          args: [input],
          memo: {
            [OPERATION_MEMO_KEY]: state,
            ...(idempotency !== undefined ? { [REQUEST_MEMO_KEY]: { hash: requestHash(request) } } : {}),
          },
          staticSummary: `bulk ${request.action}: ${input.ids !== undefined ? `${input.ids.length} ids` : JSON.stringify(input.filter)}`,
        }),
      );
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError) || idempotency === undefined) throw err;
      const existing = await this.calls.rpc(() => this.calls.client.workflow.getHandle(workflowIdForOperation(id)).describe());
      const stored = existing.memo?.[REQUEST_MEMO_KEY] as { hash?: string } | undefined;
      if (!isSameRequest(stored?.hash, request)) throw new IdempotencyConflictError(id, 'operation');
      return { operation: await this.get(id), created: false };
    }
    return { operation: state, created: true };
  }

  async get(id: string): Promise<OperationState> {
    const notFound = () => new OperationNotFoundError(id);
    const handle = this.calls.client.workflow.getHandle(workflowIdForOperation(id));
    const description = await this.calls.rpc(() => handle.describe(), { notFound });
    const memo = description.memo?.[OPERATION_MEMO_KEY] as OperationState | undefined;
    if (description.type !== BULK_OPERATION_WORKFLOW_TYPE || memo === undefined) throw notFound();
    if (description.status.name === 'RUNNING') {
      // The query is fresher by up to a page; a busy or absent worker leaves the memo's view.
      const state = await this.calls
        .queryWithin(() => handle.query(operationStateQuery))
        .catch((err: unknown) => {
          if (err instanceof TemporalUnavailableError) throw err;
          return undefined;
        });
      return state ?? memo;
    }
    if (memo.state !== 'running') return memo;
    // Stopped from outside (terminated, timed out) before it could say so itself.
    const closed = closedExecutionStatus(description.raw.workflowExecutionInfo?.status);
    return {
      ...memo,
      state: 'failed',
      endedAt: description.closeTime?.toISOString() ?? null,
      error: { code: 'operation_stopped', message: `the operation's workflow ended ${closed ?? 'outside AsyncQueue'}` },
    };
  }

  async close(): Promise<void> {
    await this.calls.close();
  }
}

/**
 * What a filter selects, as a visibility query: only tasks created before the operation (a bulk
 * replay must not find its own replays, which carry the same labels), and only those the action
 * applies to: running ones for a cancel, ended ones for a replay.
 */
function selection(action: BulkAction, filter: OperationFilter, createdAt: string): Pick<BulkOperationInput, 'query' | 'status'> {
  const { status, label, createdAfter, createdBefore, flowControlKey } = filter;
  if ([status, label, createdAfter, createdBefore, flowControlKey].every((criterion) => criterion === undefined)) {
    throw new ValidationError(
      'filter',
      'needs at least one criterion: status, label, createdAfter, createdBefore or flowControlKey',
    );
  }
  const before = createdBefore !== undefined && Date.parse(createdBefore) < Date.parse(createdAt) ? createdBefore : createdAt;
  const query = tasksQuery({
    ...(status !== undefined ? { status } : {}),
    ...(label !== undefined ? { labels: typeof label === 'string' ? [label] : label } : {}),
    ...(createdAfter !== undefined ? { createdAfter: new Date(createdAfter).toISOString() } : {}),
    createdBefore: new Date(before).toISOString(),
    ...(flowControlKey !== undefined ? { flowControlKey } : {}),
  });
  const running = action === 'cancel' ? `ExecutionStatus = 'Running'` : `ExecutionStatus != 'Running'`;
  return {
    query: `${query} AND ${running}`,
    ...(status !== undefined && CALLBACK_PHASE.has(status) ? { status } : {}),
  };
}
