/**
 * Brings a cancel to the callback calls this worker holds without waiting for their heartbeats.
 *
 * Temporal tells a running activity about a cancel only in the answer to its next heartbeat, and
 * the SDK spaces heartbeats at 80 % of the heartbeat timeout. Holding thousands of calls with a
 * short timeout costs the server one write per call every few seconds (the benchmark saw 5000 held
 * calls saturate a dev server); with a long one, a cancel waits that long. So the workflow also
 * marks a cancelled task in the `TaskStatus` search attribute (`cancelling`), and while this worker
 * holds calls that have run for more than one interval, it asks Temporal's visibility store once
 * per interval which tasks are being cancelled: one query per worker, however many calls it holds.
 */
import { AsyncQueueError } from '../src/errors.js';

/** Task ids whose cancel has been accepted and whose workflow is still running. */
export type CancellingTasks = () => Promise<ReadonlySet<string>>;

export class CancelRequestedError extends AsyncQueueError {
  readonly code = 'cancel_requested';
}

interface WatchedCall {
  controller: AbortController;
  since: number;
}

export interface CancelWatchOptions {
  cancelling: CancellingTasks;
  intervalMs: number;
  /** A failed lookup is reported and retried next interval; heartbeats still carry the cancel. */
  onError: (err: unknown) => void;
}

export class CancelWatch {
  private readonly calls = new Map<string, Set<WatchedCall>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: CancelWatchOptions) {}

  /** Watches one call of `taskId` until `release()`; `signal` aborts when its cancel is seen. */
  watch(taskId: string): { signal: AbortSignal; release(): void } {
    const call: WatchedCall = { controller: new AbortController(), since: Date.now() };
    const calls = this.calls.get(taskId) ?? new Set<WatchedCall>();
    calls.add(call);
    this.calls.set(taskId, calls);
    this.schedule();
    return {
      signal: call.controller.signal,
      release: () => {
        calls.delete(call);
        if (calls.size === 0 && this.calls.get(taskId) === calls) this.calls.delete(taskId);
      },
    };
  }

  get watching(): number {
    let count = 0;
    for (const calls of this.calls.values()) count += calls.size;
    return count;
  }

  private schedule(): void {
    if (this.timer !== undefined || this.calls.size === 0) return;
    this.timer = setTimeout(() => void this.tick(), this.options.intervalMs);
    this.timer.unref(); // never what keeps a stopping worker alive
  }

  private async tick(): Promise<void> {
    // Calls younger than one interval mostly end by themselves; a query is only worth it for the rest.
    if (this.holdsCallStartedBy(Date.now() - this.options.intervalMs)) {
      try {
        const cancelling = await this.options.cancelling();
        for (const taskId of cancelling) {
          for (const call of this.calls.get(taskId) ?? []) {
            call.controller.abort(new CancelRequestedError(`task ${taskId} is being cancelled`));
          }
        }
      } catch (err) {
        this.options.onError(err);
      }
    }
    this.timer = undefined;
    this.schedule();
  }

  /** Runs once a second over every held call: plain loops, no copies of thousands of entries. */
  private holdsCallStartedBy(cutoff: number): boolean {
    for (const calls of this.calls.values()) {
      for (const call of calls) if (call.since <= cutoff) return true;
    }
    return false;
  }
}
