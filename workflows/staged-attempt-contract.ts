/**
 * The contract of staged attempts (flow-controlled-callback.ts, activities/staged-attempts.ts):
 * while its task waits in a saturated key's staged line, an attempt's activity starts and parks in
 * a worker until an attempt of the key ending there hands it its slot, or the limiter's grant or
 * word wakes it. Deterministic and free of I/O, so the workflow bundle can import it.
 */

/** A staged attempt's activity: its park may end without a call and be followed by another. */
export const CALLBACK_STAGED_ACTIVITY = 'callCallbackStaged';

/** Its activity id: the attempts made before it, and which park of the task's for that attempt. */
export function stagedActivityId(attempts: number, park: number): string {
  return `${CALLBACK_STAGED_ACTIVITY}-after-${attempts}-park-${park}`;
}

/**
 * Staged attempts scheduled before the marker STAGED_ON_TASK_QUEUE ran on a task queue of their
 * own; each worker still serves it for those.
 */
export function stagedTaskQueue(taskQueue: string): string {
  return `${taskQueue}-staged`;
}

/**
 * A task that parks after this marker schedules its staged attempt on its own task queue, where
 * the server hands it to the worker completing the task's workflow task in the same round trip
 * (eager dispatch), not through matching to a queue of its own: measured, one key's drain at
 * parallelism 20 took the dev server 5.6 history and 1.6 matching RPCs per attempt instead of 7.4
 * and 2.6 (README, Performance → Flow control). A worker parks at most
 * ASYNCQUEUE_WORKER_MAX_STAGED_ATTEMPTS at once, and never more than half its activity pool.
 */
export const STAGED_ON_TASK_QUEUE = 'staged-on-task-queue';

/** A staged attempt's park ends by itself after this long; the workflow parks again while the task is staged. */
export const STAGED_PARK_LIMIT_MS = 60_000;
/** The reason a park reports when its time limit ended it: the task asks its limiter again. */
export const STAND_DOWN_PARK_LIMIT = 'park limit';
/** The reason a park reports when the limiter unstaged its task (a pause, lowered limits, a better waiter). */
export const STAND_DOWN_UNSTAGED = 'unstaged';
/**
 * The reason a park reports when its worker parks as many as it may: the task waits for its grant
 * through the limiter (staged tasks are granted first), not parking again on the same notice.
 */
export const STAND_DOWN_NO_ROOM = 'no room';

/**
 * A task reads a stand-down's `seq` and `no room` after this marker (older workers read either
 * as a plain stand-down and parked again).
 */
export const STAND_DOWN_OUTCOMES = 'staged-stand-down-outcomes';

/** What a staged attempt's `flowSlot` carries: its task's place in the line, and the notice that staged it. */
export interface StagedSlot {
  priority: number;
  /** The task's creation time (ISO 8601): the order within a priority. */
  createdAt: string;
  /**
   * The `seq` of the stage notice the task parks on (absent in older histories). A worker that
   * delivered a later notice unstaging the task stands the park down as it arrives.
   */
  seq?: number;
}

/** A staged attempt that was never handed a slot: no call was made, and it is no attempt. */
export interface StagedStoodDown {
  kind: 'stoodDown';
  reason: string;
  /**
   * The `seq` of the limiter's notice that unstaged the task, when that is what stood it down:
   * the worker acts on a notice before the task hears of it, and the task must not park again on
   * the notice it had (absent in older histories).
   */
  seq?: number;
}

/** Wakes a task's parked, staged attempt in the worker holding it: starts it (a slot the limiter granted) or stands it down. */
export interface WakeParkedRequest {
  taskId: string;
  request: number;
  start: boolean;
  /**
   * The staged attempt's activity id: a wake that comes before it parks applies when it does.
   * Absent from the workflow code of older workers (during a rolling upgrade): answered `absent`.
   */
  activityId?: string;
}
/**
 * `woken`: done; `calling`: its call has begun already; `pending`: it has not parked there yet and
 * the wake applies when it does; `absent`: nothing of the task's runs there.
 */
export type WakeParkedAnswer = 'woken' | 'calling' | 'pending' | 'absent';
