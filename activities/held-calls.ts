/**
 * The callback calls this worker holds, by task, so that a cancel can cut them off at once.
 *
 * Temporal tells a running activity about a cancel only in the answer to its next heartbeat, and
 * the SDK spaces heartbeats at 80 % of the heartbeat timeout; short timeouts make thousands of
 * held calls a heartbeat storm on the server, long ones a slow cancel. So when a task's cancel is
 * accepted while its call is in flight, the workflow asks which worker holds the call
 * (`locateHeldCall`, from the server's pending-activity state) and sends an `abortHeldCall`
 * activity to that worker's own task queue (`holderTaskQueue`): one activity per cancel, no
 * polling of any kind, however many workers and calls there are.
 */
import { AsyncQueueError } from './errors.js';

export class CancelRequestedError extends AsyncQueueError {
  readonly code = 'cancel_requested';
}

export class HeldCalls {
  private readonly calls = new Map<string, Set<AbortController>>();

  /** Holds one call of `taskId` until `release()`; `signal` aborts when its task's cancel arrives. */
  hold(taskId: string): { signal: AbortSignal; release(): void } {
    const controller = new AbortController();
    const calls = this.calls.get(taskId) ?? new Set<AbortController>();
    calls.add(controller);
    this.calls.set(taskId, calls);
    return {
      signal: controller.signal,
      release: () => {
        calls.delete(controller);
        if (calls.size === 0 && this.calls.get(taskId) === calls) this.calls.delete(taskId);
      },
    };
  }

  /** Aborts every call of `taskId` held here; how many there were. */
  abort(taskId: string): number {
    const calls = this.calls.get(taskId);
    if (calls === undefined) return 0;
    for (const controller of calls) controller.abort(new CancelRequestedError(`task ${taskId} is being cancelled`));
    return calls.size;
  }

  /** Whether a call (or a parked attempt) of `taskId` is held here. */
  holds(taskId: string): boolean {
    return this.calls.has(taskId);
  }

  get size(): number {
    let count = 0;
    for (const calls of this.calls.values()) count += calls.size;
    return count;
  }
}
