/**
 * The held-call runs' receiver behaviour: callbacks to `/cb/hold` are kept open, so that N calls
 * are in flight on the worker at once, and the cancels sent to some of them can be timed to the
 * moment their connection closes.
 */
import type { ServerResponse } from 'node:http';
import { now } from './clock.js';
import { reply } from './receivers.js';

export interface HeldCall {
  taskId: string;
  arrivedAt: number;
  response: ServerResponse;
  timer: NodeJS.Timeout | undefined;
  answered: boolean;
  closedAt: number | undefined;
  /** Pinned calls (cancel targets) are held until the connection closes, not released on a timer. */
  pinned: boolean;
}

/**
 * What the held-callback endpoint (`/cb/hold`) does with a request; one per concurrency run.
 * While the arrival phase lasts every call is held (so calls that arrive late still overlap the
 * early ones); when it ends each is answered once it has been held `holdMs`, and calls arriving
 * after that are answered at once.
 */
export class HoldPolicy {
  readonly held = new Map<string, HeldCall>();
  readonly arrivedAt = new Map<string, number>();
  open = 0;
  peakOpen = 0;
  arrivals = 0;
  answeredAtOnce = 0;
  private holding = true;

  constructor(readonly holdMs: number) {}

  handle(taskId: string, response: ServerResponse): void {
    const arrivedAt = now();
    this.arrivals++;
    if (!this.arrivedAt.has(taskId)) this.arrivedAt.set(taskId, arrivedAt);
    if (!this.holding) {
      this.answeredAtOnce++;
      reply(response, 200, { held: 0 });
      return;
    }
    const call: HeldCall = { taskId, arrivedAt, response, timer: undefined, answered: false, closedAt: undefined, pinned: false };
    this.held.set(taskId, call);
    this.open++;
    this.peakOpen = Math.max(this.peakOpen, this.open);
    // 'close' on the response before it was answered: the connection went away (AsyncQueue aborted).
    response.once('close', () => {
      if (call.answered) return;
      call.closedAt = now();
      call.answered = true;
      this.open--;
      if (call.timer !== undefined) clearTimeout(call.timer);
    });
  }

  /** Held until the connection closes (bounded at 60 s), whatever the phase. */
  pin(call: HeldCall): void {
    call.pinned = true;
    if (call.timer !== undefined) clearTimeout(call.timer);
    call.timer = setTimeout(() => this.release(call), 60_000);
  }

  endArrivalPhase(): void {
    this.holding = false;
    for (const call of this.held.values()) {
      if (call.answered || call.pinned) continue;
      call.timer = setTimeout(() => this.release(call), Math.max(0, call.arrivedAt + this.holdMs - now()));
    }
  }

  release(call: HeldCall): void {
    if (call.answered) return;
    call.answered = true;
    this.open--;
    if (call.timer !== undefined) clearTimeout(call.timer);
    reply(call.response, 200, { heldMs: Math.round(now() - call.arrivedAt) });
  }

  releaseAll(): void {
    this.holding = false;
    for (const call of this.held.values()) this.release(call);
  }
}
