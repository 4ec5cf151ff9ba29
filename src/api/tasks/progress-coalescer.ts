/**
 * Progress reports, coalesced per task. Each report sent to a workflow is a signal, that is a
 * history event plus a workflow task, and Temporal ends a workflow at 51,200 events: a callee
 * reporting every 100 ms would kill its own task within the hour. So this API process sends a
 * task's first report at once and then at most one per interval, always the newest, dropping
 * the ones in between; the newest one it holds is shown by its reads at once (`latest`).
 * At the default 5 s a task reporting without pause costs at most 720 signals an hour per API
 * process (≤ 2,880 events with their workflow tasks).
 */
import type { ProgressUpdate } from '../../../workflows/task-contract.js';

export interface ProgressCoalescerOptions {
  intervalMs: number;
  send: (taskId: string, update: ProgressUpdate) => Promise<void>;
  /** A deferred send failed (the task ended meanwhile, or Temporal is away): the report is dropped. */
  onDeferredError: (taskId: string, err: unknown) => void;
}

interface Entry {
  pending: ProgressUpdate | undefined;
  /**
   * The held report being sent now: still shown by reads until its signal is in the workflow's
   * history (between the two, the workflow's state is older than what the callee was told).
   */
  sending?: ProgressUpdate;
  timer: NodeJS.Timeout;
}

export class ProgressCoalescer {
  /** Tasks that had a report sent within the last interval. */
  private readonly recent = new Map<string, Entry>();

  constructor(private readonly options: ProgressCoalescerOptions) {}

  /**
   * Sends `update` now if this task had none sent within the interval (errors reach the caller:
   * unknown task, ended task), otherwise keeps it to send at the interval's end.
   */
  async report(taskId: string, update: ProgressUpdate): Promise<'sent' | 'coalesced'> {
    const entry = this.recent.get(taskId);
    if (entry !== undefined) {
      entry.pending = update;
      return 'coalesced';
    }
    this.recent.set(taskId, { pending: undefined, timer: this.arm(taskId) });
    try {
      await this.options.send(taskId, update);
    } catch (err) {
      this.forget(taskId);
      throw err;
    }
    return 'sent';
  }

  /** The newest report held back for this task (or being sent), if any. */
  latest(taskId: string): ProgressUpdate | undefined {
    const entry = this.recent.get(taskId);
    return entry?.pending ?? entry?.sending;
  }

  /** Sends every held report now (graceful shutdown: nothing accepted is lost). */
  async flush(): Promise<void> {
    const held = [...this.recent].filter(([, entry]) => entry.pending !== undefined);
    for (const [taskId] of this.recent) this.forget(taskId);
    await Promise.all(held.map(([taskId, entry]) => this.sendDeferred(taskId, entry.pending!)));
  }

  private arm(taskId: string): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const entry = this.recent.get(taskId);
      if (entry?.pending === undefined) {
        // Kept while a send is in flight (reads show it), then gone at the next interval's end.
        if (entry?.sending !== undefined) entry.timer = this.arm(taskId);
        else this.recent.delete(taskId);
        return;
      }
      const update = entry.pending;
      entry.pending = undefined;
      entry.sending = update;
      entry.timer = this.arm(taskId);
      void this.sendDeferred(taskId, update).finally(() => {
        if (entry.sending === update) delete entry.sending;
      });
    }, this.options.intervalMs);
    timer.unref();
    return timer;
  }

  private async sendDeferred(taskId: string, update: ProgressUpdate): Promise<void> {
    try {
      await this.options.send(taskId, update);
    } catch (err) {
      this.options.onDeferredError(taskId, err);
    }
  }

  private forget(taskId: string): void {
    const entry = this.recent.get(taskId);
    if (entry !== undefined) clearTimeout(entry.timer);
    this.recent.delete(taskId);
  }
}
