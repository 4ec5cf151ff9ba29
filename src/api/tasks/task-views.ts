/**
 * How a task's view is made from what Temporal stores: the workflow's memo, its pending
 * activities while it runs, and its execution status once it has closed. GET and the list use the
 * same functions, so a task reads the same in both however its workflow ended.
 */
import {
  CANCELLING_INDEXED_STATUS,
  DEFAULT_CALLBACK_METHOD,
  isTerminal,
  type CallbackMethod,
  type TaskMemo,
  type TaskState,
  type TaskStatus,
} from '../../../workflows/task-contract.js';

/**
 * What the API shows: the workflow's state, with `status`, `attempts`, `nextAttemptAt` and
 * `lastError` refined from what only the server's pending-activity state knows, and the fields a
 * task created before they existed lacks filled in (`withDefaults`).
 */
export type TaskView = TaskState & { method: CallbackMethod; labels: string[]; endedAt?: string };

/**
 * How a closed workflow ended, in the words of visibility's `ExecutionStatus` (the names the
 * Temporal UI and `temporal workflow list` use).
 */
export type ClosedExecutionStatus = 'Completed' | 'Failed' | 'Canceled' | 'Terminated' | 'TimedOut' | 'ContinuedAsNew';

/**
 * The view of a task whose workflow has closed, from its memo, when the workflow's result does
 * not hold it: the workflow was terminated or timed out (through the Temporal UI or CLI, or a
 * workflow timeout), or cancelled through Temporal.
 *
 * - An outcome the workflow had fixed stands: a task that had succeeded, failed or been cancelled
 *   keeps that status; only the webhook it was still delivering is marked failed.
 * - A task stopped before its outcome was fixed is `failed` with code `terminated` or
 *   `timed_out`: no result exists and the callee may or may not have done the work, which is
 *   what `failed` tells an app (replay it, or look). A task whose cancel had been accepted is
 *   `cancelled`: the cancel was already promised to the app.
 */
export function closedView(
  memo: TaskMemo,
  closed: { execution: ClosedExecutionStatus; closedAt: string | undefined; indexedStatus: string | undefined },
): TaskState {
  const { execution, closedAt } = closed;
  const view: TaskState = { ...memo };
  const how = execution === 'TimedOut' ? 'timed_out' : execution === 'Canceled' ? 'cancelled' : 'terminated';
  const message = `the task's workflow was ${how.replace('_', ' ')} outside AsyncQueue`;
  if (view.webhook?.status === 'pending') view.webhook = { ...view.webhook, status: 'failed', error: message };
  if (isTerminal(memo.status)) return view;
  const cancelAccepted = closed.indexedStatus === CANCELLING_INDEXED_STATUS;
  const status: TaskStatus = how === 'cancelled' || cancelAccepted ? 'cancelled' : 'failed';
  return {
    ...view,
    status,
    updatedAt: closedAt ?? memo.updatedAt,
    error: { code: status === 'cancelled' ? 'cancelled' : how, message },
  };
}

/**
 * Fields every view has even when the task's workflow never stored them (tasks from before they
 * existed), with the value the task behaves by, and `endedAt`: the workflow stamps `updatedAt` at
 * each status change and never after the final one (the webhook's delivery has its own
 * `deliveredAt`), so an ended task's `updatedAt` is when it ended. Derived here, so the failures
 * page (`?status=failed`) shows when each task failed without one more memo field or visibility
 * write per task.
 */
export function withDefaults(view: TaskState): TaskView {
  return {
    ...view,
    method: view.method ?? DEFAULT_CALLBACK_METHOD,
    labels: view.labels ?? [],
    ...(isTerminal(view.status) ? { endedAt: view.updatedAt } : {}),
  };
}
