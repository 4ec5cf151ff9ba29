/**
 * The I/O of a bulk operation (workflows/bulk-operation-workflow.ts): one activity handles one
 * visibility page of matching tasks, or one slice of listed ids, cancelling or replaying each.
 *
 * A retried activity handles its page again, so each per-task action is idempotent: a cancel is a
 * signal the task's workflow takes once (and a task that ended cancelled with this operation's
 * reason counts as cancelled by it), and a replay's task id is derived from the operation and the
 * original, so a second start of it is refused by Temporal (WorkflowExecutionAlreadyStarted).
 */
import { createHash } from 'node:crypto';
import { Context, heartbeat } from '@temporalio/activity';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  isGrpcServiceError,
  type Client,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  bulkCancelReason,
  type OperationError,
  type OperationPageRequest,
  type OperationPageResult,
} from '../workflows/bulk-operation-contract.js';
import {
  TASK_MEMO_KEY,
  TASK_WORKFLOW_TYPE,
  WORKFLOW_ID_PREFIX,
  cancelTaskSignal,
  isTerminal,
  workflowIdForTask,
  type TaskMemo,
} from '../workflows/task-contract.js';
import type { taskWorkflow } from '../workflows/task-workflow.js';
import { initialMemo, replayInput, taskSearchAttributes, taskSummary } from '../workflows/task-start.js';
import { memoFromStored, storedMemo, type AnyTaskMemo } from '../workflows/task-memo.js';
import { TaskInputMissingError, readTaskInput } from './task-history.js';
import { endedBeforeItsMemo, withPendingActivities } from './task-phase.js';
/** Tasks of a page handled at once: enough to keep the server busy, few enough not to swamp it. */
const TASKS_IN_PARALLEL = 16;
const GRPC_INVALID_ARGUMENT = 3;

type Outcome = { kind: 'succeeded' | 'skipped' | 'unmatched' } | { kind: 'failed'; error: OperationError };

export function createBulkOperationActivities() {
  return {
    /** Cancels or replays the tasks of one page (a visibility page, or a slice of ids). */
    async processOperationPage(request: OperationPageRequest): Promise<OperationPageResult> {
      const { client } = Context.current();
      const page = request.ids !== undefined ? { ids: request.ids, nextPageToken: null } : await listPage(client, request);
      const result: OperationPageResult = {
        matched: 0,
        succeeded: 0,
        failed: 0,
        skipped: 0,
        errors: [],
        nextPageToken: page.nextPageToken,
      };
      let done = 0;
      await forEachLimited(page.ids, TASKS_IN_PARALLEL, async (taskId) => {
        const outcome = await handleTask(client, request, taskId);
        heartbeat(++done);
        if (outcome.kind === 'unmatched') return;
        result.matched++;
        result[outcome.kind]++;
        if (outcome.kind === 'failed') result.errors.push(outcome.error);
      });
      return result;
    },
  };
}

async function listPage(client: Client, request: OperationPageRequest): Promise<{ ids: string[]; nextPageToken: string | null }> {
  try {
    const response = await client.workflowService.listWorkflowExecutions({
      namespace: client.options.namespace,
      pageSize: request.pageSize,
      query: request.query ?? '',
      nextPageToken: request.pageToken !== undefined ? Buffer.from(request.pageToken, 'base64') : null,
    });
    const ids = (response.executions ?? [])
      // A `task-*` workflow of another program has no task memo: not ours to touch.
      .filter((execution) => execution.memo?.fields?.[TASK_MEMO_KEY] != null)
      .map((execution) => (execution.execution?.workflowId ?? '').slice(WORKFLOW_ID_PREFIX.length))
      .filter((id) => id !== '');
    const token = response.nextPageToken;
    return { ids, nextPageToken: token && token.length > 0 ? Buffer.from(token).toString('base64') : null };
  } catch (err) {
    // A query the server refuses will be refused again: the operation fails, saying why.
    if (isGrpcServiceError(err) && err.code === GRPC_INVALID_ARGUMENT) {
      throw ApplicationFailure.nonRetryable(`the visibility query was refused: ${err.details ?? err.message}`, 'InvalidQuery');
    }
    throw err;
  }
}

async function handleTask(client: Client, request: OperationPageRequest, taskId: string): Promise<Outcome> {
  const fail = (code: string, message: string): Outcome => ({ kind: 'failed', error: { taskId, code, message } });
  let description: WorkflowExecutionDescription;
  try {
    description = await client.workflow.getHandle(workflowIdForTask(taskId)).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return fail('task_not_found', `task ${taskId} not found`);
    throw err; // the server is away or busy: the page is retried, and every action on it is idempotent
  }
  const stored = description.memo?.[TASK_MEMO_KEY] as AnyTaskMemo | undefined;
  if (description.type !== TASK_WORKFLOW_TYPE || stored === undefined) return fail('task_not_found', `task ${taskId} not found`);
  const memo = memoFromStored(stored, description.workflowId, description.startTime.toISOString());
  return request.action === 'cancel'
    ? cancelTask(client, request, taskId, description, memo)
    : replayTask(client, request, taskId, description, fail);
}

/** As `POST /v1/tasks/{id}/cancel` does: read what the server stores, then signal. */
async function cancelTask(
  client: Client,
  request: OperationPageRequest,
  taskId: string,
  description: WorkflowExecutionDescription,
  memo: TaskMemo,
): Promise<Outcome> {
  const reason = bulkCancelReason(request.operationId);
  const ours = memo.status === 'cancelled' && memo.error?.message === reason;
  if (description.status.name !== 'RUNNING' || isTerminal(memo.status)) return { kind: ours ? 'succeeded' : 'skipped' };
  const pending = description.raw.pendingActivities ?? [];
  // Ended a moment ago, its webhook under way: nothing to cancel (task-phase.ts).
  if (endedBeforeItsMemo(memo, pending)) return { kind: 'skipped' };
  // Judged as the API's views judge it: `pending`, `running` and `retrying` share one indexed value.
  const { status, attempts } = withPendingActivities(memo, pending);
  if (request.status !== undefined && status !== request.status) return { kind: 'unmatched' };
  try {
    await client.workflow.getHandle(workflowIdForTask(taskId)).signal(cancelTaskSignal, { reason, attemptsStarted: attempts });
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { kind: 'skipped' }; // it ended on its own meanwhile
    throw err;
  }
  return { kind: 'succeeded' };
}

async function replayTask(
  client: Client,
  request: OperationPageRequest,
  taskId: string,
  description: WorkflowExecutionDescription,
  fail: (code: string, message: string) => Outcome,
): Promise<Outcome> {
  if (description.status.name === 'RUNNING') return { kind: 'skipped' };
  let original;
  try {
    original = await readTaskInput(client, taskId, description.runId);
  } catch (err) {
    if (err instanceof TaskInputMissingError) return fail('task_input_missing', err.message);
    throw err;
  }
  const input = replayInput(original, {
    id: replayIdFor(request.operationId, taskId),
    createdAt: new Date().toISOString(),
    policy: request.policy,
    overrides: {},
  });
  try {
    await client.workflow.start<typeof taskWorkflow>(TASK_WORKFLOW_TYPE, {
      taskQueue: Context.current().info.taskQueue,
      workflowId: workflowIdForTask(input.id),
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      args: [input],
      memo: { [TASK_MEMO_KEY]: storedMemo(initialMemo(input)) },
      typedSearchAttributes: taskSearchAttributes(input),
      staticSummary: taskSummary(input),
    });
  } catch (err) {
    // Started by an earlier attempt of this page: this operation has replayed the task already.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  return { kind: 'succeeded' };
}

/** A UUID (version 8) derived from the operation and the original: one replay per task per operation. */
export function replayIdFor(operationId: string, taskId: string): string {
  const bytes = createHash('sha256').update(`asyncqueue/bulk-replay/v1\n${operationId}\n${taskId}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function forEachLimited<T>(items: readonly T[], limit: number, each: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await each(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
