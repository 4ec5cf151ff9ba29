/**
 * The task memo as Temporal stores it, and the memo read back from it.
 *
 * The memo lives in the workflow's mutable state, which the server rewrites with every update of
 * the task (about eight for a plain task), and in its visibility row: its size is paid for many
 * times per task. Measured on the dev server (README, Performance), it was a third of what an
 * AsyncQueue task cost the engine beyond the minimal raw-Temporal job. So a memo is stored
 * without what its reader can derive (`storedMemo`): the id (the workflow id holds it), and
 * fields at the value every task starts with (`updatedAt` equal to `createdAt`, no attempts, no
 * delay, the default priority, a webhook not yet tried). `memoFromStored` puts them back.
 *
 * A stored memo says so with `v: 2`. Memos without it (every task from before, and a schedule's
 * template) are read as they are: they carry every field.
 */
import { DEFAULT_PRIORITY } from './flow-control-contract.js';
import { WORKFLOW_ID_PREFIX, type TaskMemo, type TaskStatus } from './task-contract.js';

export const STORED_MEMO_VERSION = 2;

/** What `storedMemo` leaves out may be missing; the rest is as in `TaskMemo`. */
export type StoredTaskMemo = Omit<TaskMemo, 'id' | 'updatedAt' | 'attempts' | 'delay' | 'createdAt'> & {
  v: typeof STORED_MEMO_VERSION;
  status: TaskStatus;
  createdAt: string;
  updatedAt?: string;
  attempts?: number;
  delay?: number;
};

/** Either form, as a reader finds it. */
export type AnyTaskMemo = TaskMemo | StoredTaskMemo;

/** The memo to write: `memo` without what `memoFromStored` derives. */
export function storedMemo(memo: TaskMemo): StoredTaskMemo {
  const { id: _id, updatedAt, attempts, delay, priority, webhook, ...kept } = memo;
  return {
    v: STORED_MEMO_VERSION,
    ...kept,
    ...(updatedAt !== memo.createdAt ? { updatedAt } : {}),
    ...(attempts !== 0 ? { attempts } : {}),
    ...(delay !== 0 ? { delay } : {}),
    ...(priority !== undefined && priority !== DEFAULT_PRIORITY ? { priority } : {}),
    ...(webhook !== undefined && !isUntriedWebhook(webhook) ? { webhook } : {}),
  };
}

/**
 * The memo a task's workflow stored, whole again. `workflowId` and `startedAt` are the
 * workflow's: they name a stored memo's task, and a schedule's runs, whose memo starts as the
 * schedule's template (with an empty id and creation time: Temporal chooses both) until the run
 * publishes its own (scheduled-input.ts derives them the same way).
 */
export function memoFromStored(memo: AnyTaskMemo, workflowId: string, startedAt: string | undefined): TaskMemo {
  const id = taskIdOf(workflowId);
  if (!isStoredMemo(memo)) {
    if (memo.id !== '') return memo;
    const createdAt = startedAt ?? memo.createdAt;
    return { ...memo, id, createdAt, updatedAt: createdAt };
  }
  const { v: _v, updatedAt, attempts, delay, priority, webhook, ...kept } = memo;
  return {
    id,
    ...kept,
    updatedAt: updatedAt ?? memo.createdAt,
    attempts: attempts ?? 0,
    delay: delay ?? 0,
    priority: priority ?? DEFAULT_PRIORITY,
    ...(webhook !== undefined ? { webhook } : memo.webhookUrl !== null ? { webhook: { status: 'pending', attempts: 0 } } : {}),
  };
}

function isStoredMemo(memo: AnyTaskMemo): memo is StoredTaskMemo {
  return (memo as Partial<StoredTaskMemo>).v === STORED_MEMO_VERSION;
}

function isUntriedWebhook(webhook: NonNullable<TaskMemo['webhook']>): boolean {
  return webhook.status === 'pending' && webhook.attempts === 0 && Object.keys(webhook).length === 2;
}

function taskIdOf(workflowId: string): string {
  return workflowId.startsWith(WORKFLOW_ID_PREFIX) ? workflowId.slice(WORKFLOW_ID_PREFIX.length) : workflowId;
}
