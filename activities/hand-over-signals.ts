/**
 * A worker's hand-overs (slot-relay.ts) reach their key's limiter in `handOverSlot` signals, one at
 * a time per key: those made while the signal before is on its way go together in the next
 * (`also`). Every hand-over is a signal the engine's own work never sends, and a saturated key
 * hands a slot over on nearly every attempt; while the server is quick, each still goes alone.
 */
import type { SlotHandOver, SlotHandOvers } from '../workflows/flow-control-contract.js';

interface Waiting {
  handOver: SlotHandOver;
  /** Whether the signal carrying it reached the limiter. */
  done: (delivered: boolean) => void;
}

export class HandOverSignals {
  /** Keys whose signal is on its way, and the hand-overs waiting for the next. */
  private readonly queued = new Map<string, Waiting[]>();

  /**
   * Sends `handOver` with `deliver` (a signal to the key's limiter), now, or with the others of
   * `key` once the signal in flight is done; whether the signal carrying it was delivered.
   */
  send(key: string, handOver: SlotHandOver, deliver: (signal: SlotHandOvers) => Promise<void>): Promise<boolean> {
    return new Promise((done) => {
      const waiting = this.queued.get(key);
      if (waiting !== undefined) {
        waiting.push({ handOver, done });
        return;
      }
      this.queued.set(key, []);
      void this.flush(key, [{ handOver, done }], deliver);
    });
  }

  private async flush(key: string, batch: Waiting[], deliver: (signal: SlotHandOvers) => Promise<void>): Promise<void> {
    for (let next = batch; next.length > 0; next = this.take(key)) {
      const [first, ...also] = next.map((waiting) => waiting.handOver);
      let delivered = true;
      try {
        await deliver({ ...first!, ...(also.length > 0 ? { also } : {}) });
      } catch {
        delivered = false;
      }
      for (const waiting of next) waiting.done(delivered);
    }
    this.queued.delete(key);
  }

  /** The hand-overs that queued for `key` meanwhile (the key stays marked as sending). */
  private take(key: string): Waiting[] {
    const waiting = this.queued.get(key) ?? [];
    this.queued.set(key, []);
    return waiting;
  }
}
