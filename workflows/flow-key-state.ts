/**
 * A flow-control key's state as its limiter (flow-limiter.ts) keeps it: limits, pause, the tasks
 * holding a slot, its line (the staged head, then the waiters: flow-line.ts), the starts in its
 * rate window; and how each message changes it. No Temporal commands here: the limiter sends the
 * grants, notices and memos this decides. Deterministic: the only clock is workflow time.
 */
import type {
  FlowHolder,
  FlowKeyView,
  FlowLimiterInput,
  FlowWaiter,
  SlotHandOver,
  SlotHandOvers,
  SlotRelease,
  SlotRequest,
  StageNotice,
  StartRecord,
} from './flow-control-contract.js';
import { insertInOrder, restage, stageCapacity } from './flow-line.js';

/**
 * The rate window as the limiter counts it is this much longer than `period`. With reported
 * starts, the limiter stamps a start no earlier than the server took the worker's report, which
 * the worker sends as it begins the call; what is left is the spread of the calls' own way to
 * the callee (connection, the callee's accept). Counting grants (runs before reported starts),
 * the spread also held the task's workflow task and the activity's dispatch: with 100 ms, four
 * starts of a 3-per-second key reached the callee within 994 ms on the loaded CI cluster.
 */
const RATE_WINDOW_MARGIN_MS = 100;
const GRANT_COUNTED_MARGIN_MS = 300;

/** What the run's markers decided at its start (flow-limiter.ts): a run never mixes the two ways. */
export interface LimiterMarks {
  /** Starts count from the worker's report; a grant asked for again is sent again. */
  reportedStarts: boolean;
  /** The head of a saturated key's line is staged. */
  stagedHandOver: boolean;
}

/** The part of the state a run hands the next at continue-as-new. */
export type CarriedState = Required<
  Pick<FlowLimiterInput, 'limits' | 'paused' | 'holders' | 'waiters' | 'starts' | 'staged' | 'seq'>
>;

export class FlowKeyState {
  limits: FlowLimiterInput['limits'];
  paused: boolean;
  readonly holders: Map<string, FlowHolder>;
  /** Waiters not staged, sorted by (priority, creation time, arrival): the head is served first. */
  readonly waiters: FlowWaiter[];
  /** Waiters told they are staged, in order; every one of them comes before every waiter. */
  readonly staged: FlowWaiter[];
  private starts: StartRecord[];
  private seq: number;

  constructor(
    input: FlowLimiterInput,
    private readonly marks: LimiterMarks,
  ) {
    this.limits = input.limits;
    this.paused = input.paused;
    this.holders = new Map(Object.entries(input.holders ?? {}));
    this.waiters = [...(input.waiters ?? [])];
    this.staged = [...(input.staged ?? [])];
    this.starts = (input.starts ?? []).map((start) =>
      typeof start === 'number' ? { taskId: '', request: 0, at: start } : start,
    );
    this.seq = input.seq ?? 0;
  }

  windowMs(): number {
    return this.limits.period * 1000 + (this.marks.reportedStarts ? RATE_WINDOW_MARGIN_MS : GRANT_COUNTED_MARGIN_MS);
  }

  slotFree(): boolean {
    return this.limits.parallelism === null || this.holders.size < this.limits.parallelism;
  }

  /** A start not stamped yet counts as happening now: it never leaves the window on its own. */
  pruneStarts(): void {
    const since = Date.now() - this.windowMs();
    this.starts = this.starts.filter((start) => start.at === undefined || start.at > since);
  }

  rateFree(): boolean {
    return this.limits.rate === null || this.starts.length < this.limits.rate;
  }

  /** Whether the attempts granted now report their call's start (the key has a rate). */
  reportsStart(): boolean {
    return this.marks.reportedStarts && this.limits.rate !== null;
  }

  view(key: string): FlowKeyView {
    return {
      key,
      parallelism: this.limits.parallelism,
      rate: this.limits.rate,
      period: this.limits.period,
      paused: this.paused,
      inFlight: this.holders.size,
      waiting: this.waiters.length + this.staged.length,
      ...(this.marks.stagedHandOver ? { staged: this.staged.length } : {}),
    };
  }

  /**
   * The attempt's call has begun, or is over: its start counts from now. Never earlier than the
   * call began: the worker reports it as it begins the call, and a slot comes back after its call.
   */
  stampStart(taskId: string, request: number): void {
    const start = this.starts.find((s) => s.taskId === taskId && s.request === request && s.at === undefined);
    if (start !== undefined) start.at = Date.now();
  }

  /** The slot is the task's; with a rate, its start enters the window (stamped later, or now). */
  take(taskId: string, request: number): void {
    const now = Date.now();
    this.holders.set(taskId, { request, grantedAt: now });
    if (this.limits.rate !== null) this.starts.push({ taskId, request, ...(this.marks.reportedStarts ? {} : { at: now }) });
  }

  /** The slot is free again; its start (if it had one) keeps counting in the rate window. */
  dropHolder(taskId: string): void {
    const held = this.holders.get(taskId);
    if (held === undefined) return;
    this.holders.delete(taskId);
    this.stampStart(taskId, held.request);
  }

  /**
   * A task asks for a slot for `request`: `again` when it holds that slot already (its grant did
   * not reach it: the API was granted the first slot but gave up waiting for the answer, and
   * started the task without it), `queued` when it joined the line, `kept` when nothing changed.
   */
  acquire(request: SlotRequest): 'again' | 'queued' | 'kept' {
    // A task sends its requests in order and each after releasing the one before (it awaits the
    // signals), so a newer request replaces whatever the task still had here; a repeat of one
    // keeps its place.
    const held = this.holders.get(request.taskId);
    if (held !== undefined && held.request >= request.request) {
      return this.marks.reportedStarts && held.request === request.request ? 'again' : 'kept';
    }
    const inLine = (w: FlowWaiter): boolean => w.taskId === request.taskId;
    const waiting = this.waiters.find(inLine) ?? this.staged.find(inLine);
    if (waiting !== undefined && waiting.request >= request.request) return 'kept';
    this.dropHolder(request.taskId);
    removeFrom(this.waiters, inLine);
    removeFrom(this.staged, inLine);
    insertInOrder(this.waiters, { ...request, seq: ++this.seq });
    return 'queued';
  }

  /**
   * The API's ask for a due task's first slot: taken only if it is free now and nobody waits
   * (never ahead of a waiter); otherwise nothing is recorded.
   */
  tryFirstSlot(request: SlotRequest): boolean {
    const inLine = (w: FlowWaiter): boolean => w.taskId === request.taskId;
    const known = this.holders.has(request.taskId) || this.waiters.some(inLine) || this.staged.some(inLine);
    this.pruneStarts();
    if (known || this.paused || this.waiters.length + this.staged.length > 0 || !this.slotFree() || !this.rateFree()) {
      return false;
    }
    this.take(request.taskId, request.request);
    return true;
  }

  /** The task gives back its slot for `request`, or withdraws it from the line. */
  release(release: SlotRelease): void {
    const held = this.holders.get(release.taskId);
    if (held !== undefined && held.request <= release.request) this.dropHolder(release.taskId);
    for (const line of [this.waiters, this.staged]) {
      const index = line.findIndex((w) => w.taskId === release.taskId);
      if (index >= 0 && line[index]!.request <= release.request) line.splice(index, 1);
    }
  }

  /**
   * A worker handed the slot of an attempt that ended to a staged attempt parked there, whose call
   * has begun: the holder changes, the count does not. A task that released its request since (a
   * cancel, after its call) is no holder; one the limiter granted meanwhile holds its slot once.
   */
  handOver({ from, to }: SlotHandOver): void {
    const held = this.holders.get(from.taskId);
    if (held !== undefined && held.request <= from.request) this.dropHolder(from.taskId);
    // Signals from two workers (or two calls) may arrive out of order: the attempt that hands its
    // slot on may have been handed it by a hand-over not received yet. Its call is over: it leaves
    // the line, and that late hand-over then finds it nowhere and counts nothing for it.
    this.leaveLine(from);
    if (this.leaveLine(to) || this.holders.get(to.taskId)?.request === to.request) this.take(to.taskId, to.request);
  }

  /** A worker's `handOverSlot` signal: its hand-over, then those it carried `also`, in order. */
  handOverAll({ also, ...first }: SlotHandOvers): void {
    for (const handOver of [first, ...(also ?? [])]) this.handOver(handOver);
  }

  /** Takes the slots that are free for the head of the line (the staged first); those granted. */
  takeWhatFits(): FlowWaiter[] {
    this.pruneStarts();
    const batch: FlowWaiter[] = [];
    while (!this.paused && this.staged.length + this.waiters.length > 0 && this.slotFree() && this.rateFree()) {
      const waiter = (this.staged.length > 0 ? this.staged : this.waiters).shift()!;
      this.take(waiter.taskId, waiter.request);
      batch.push(waiter);
    }
    return batch;
  }

  /** Keeps the head of the line staged (flow-line.ts); a notice for each task whose part changed. */
  restage(): StageNotice[] {
    const capacity = stageCapacity(this.limits, this.paused, this.holders.size);
    const changes = restage(this.staged, this.waiters, capacity, !this.slotFree());
    return [...changes.values()].map(({ waiter, staged }) => ({
      taskId: waiter.taskId,
      request: waiter.request,
      staged,
      seq: ++this.seq,
      priority: waiter.priority,
      createdAt: waiter.createdAt,
    }));
  }

  /** A notice found the task's workflow gone: it leaves the line. */
  removeGone(taskId: string, request: number): void {
    for (const line of [this.staged, this.waiters]) removeFrom(line, (w) => w.taskId === taskId && w.request === request);
  }

  /** A grant that was never delivered, or found the task gone: the slot was never taken, no call began. */
  ungrant(taskId: string, request: number): boolean {
    if (this.holders.get(taskId)?.request !== request) return false;
    this.holders.delete(taskId);
    if (this.marks.reportedStarts)
      this.starts = this.starts.filter((start) => start.taskId !== taskId || start.request !== request);
    return true;
  }

  /** A grant not delivered: back in line, in its place. */
  requeue(waiter: FlowWaiter): void {
    if (this.ungrant(waiter.taskId, waiter.request)) insertInOrder(this.waiters, waiter);
  }

  /** Counting grants (runs before reported starts): a start counts from when its task had the grant. */
  stampDelivered(batch: readonly FlowWaiter[], grantedAt: number): void {
    const delivered = Date.now();
    for (const { taskId, request } of batch) {
      const start = this.starts.find((s) => s.taskId === taskId && s.request === request && s.at === grantedAt);
      if (start !== undefined) start.at = delivered;
    }
  }

  saturatedWithWaiters(): boolean {
    return !this.paused && this.waiters.length + this.staged.length > 0 && !this.slotFree();
  }

  /** When a start leaves the rate window while waiters wait for it (ms from now); undefined if none. */
  rateWakeMs(): number | undefined {
    const stamped = this.starts.flatMap((start) => (start.at !== undefined ? [start.at] : []));
    if (this.paused || this.waiters.length === 0 || !this.slotFree() || this.rateFree() || stamped.length === 0) return undefined;
    return Math.min(...stamped) + this.windowMs() - Date.now() + 1;
  }

  carried(): CarriedState {
    return {
      limits: this.limits,
      paused: this.paused,
      holders: Object.fromEntries(this.holders),
      waiters: this.waiters,
      starts: this.starts,
      // Always, empty too: left out, `...input` would carry the staged line the run began with.
      staged: this.staged,
      seq: this.seq,
    };
  }

  private leaveLine(slot: SlotRelease): boolean {
    let left = false;
    for (const line of [this.staged, this.waiters]) {
      left = removeFrom(line, (w) => w.taskId === slot.taskId && w.request <= slot.request) || left;
    }
    return left;
  }
}

/** Removes the first entry that matches; whether there was one. */
function removeFrom(line: FlowWaiter[], matches: (w: FlowWaiter) => boolean): boolean {
  const index = line.findIndex(matches);
  if (index >= 0) line.splice(index, 1);
  return index >= 0;
}
