/**
 * One API process's first-slot asks, per key: one update in flight at a time, carrying every ask
 * that arrived while the one before was in flight. Measured without it (200 creates at once for
 * one key with parallelism 1,000): Temporal refused or aborted most of the concurrent updates to
 * the key's limiter (a workflow takes at most 10 in flight; an aborted one's workflow task is
 * dropped, which evicts the limiter from the worker's cache), 34 of 200 tasks got their slot, and
 * the creates took 5 s.
 */
import type { FirstSlotAnswer, FirstSlotRequest, FlowLimits } from '../../../workflows/flow-control-contract.js';

/** At most this many asks in one update: its payload stays small, and so does one workflow task's work. */
export const MAX_ASKS_PER_UPDATE = 100;

/**
 * Sends one key's asks in one update, starting its limiter with `startLimits` if none runs. The
 * answers in the asks' order; undefined when none came by `deadline` (epoch ms). Throws when the
 * creates must fail (Temporal unreachable).
 */
export type SendAsks = (
  key: string,
  asks: FirstSlotRequest[],
  startLimits: FlowLimits,
  deadline: number,
) => Promise<FirstSlotAnswer[] | undefined>;

interface PendingAsk {
  ask: FirstSlotRequest;
  startLimits: FlowLimits;
  /** Epoch ms: the create goes on without a grant after this. */
  deadline: number;
  settle: (answer: FirstSlotAnswer | undefined) => void;
  fail: (err: unknown) => void;
}

export class FirstSlotAsks {
  /** Keys with an update in flight, and the asks that arrived since it was sent. */
  private readonly queued = new Map<string, PendingAsk[]>();

  constructor(
    private readonly send: SendAsks,
    private readonly waitMs: number,
  ) {}

  /** The limiter's answer to this ask, or undefined when it did not come within the wait. */
  ask(key: string, ask: FirstSlotRequest, startLimits: FlowLimits): Promise<FirstSlotAnswer | undefined> {
    return new Promise((settle, fail) => {
      const pending: PendingAsk = { ask, startLimits, deadline: Date.now() + this.waitMs, settle, fail };
      const queue = this.queued.get(key);
      if (queue !== undefined) {
        queue.push(pending);
        return;
      }
      this.queued.set(key, []);
      void this.sendInTurn(key, [pending]);
    });
  }

  private async sendInTurn(key: string, first: PendingAsk[]): Promise<void> {
    for (let batch = first; batch.length > 0; batch = this.nextBatch(key)) {
      // The earliest deadline: no create waits past its own.
      const deadline = Math.min(...batch.map((pending) => pending.deadline));
      try {
        const answers = await this.send(
          key,
          batch.map((pending) => pending.ask),
          batch[0]!.startLimits,
          deadline,
        );
        batch.forEach((pending, index) => pending.settle(answers?.[index]));
      } catch (err) {
        for (const pending of batch) pending.fail(err);
      }
    }
  }

  /** The asks to send next, in arrival order; those past their deadline go on without a grant. */
  private nextBatch(key: string): PendingAsk[] {
    const queue = this.queued.get(key) ?? [];
    const now = Date.now();
    const live: PendingAsk[] = [];
    for (const pending of queue) {
      if (pending.deadline > now) live.push(pending);
      else pending.settle(undefined);
    }
    const batch = live.splice(0, MAX_ASKS_PER_UPDATE);
    if (batch.length === 0) this.queued.delete(key);
    else this.queued.set(key, live);
    return batch;
  }
}
