/**
 * The staged attempts parked in this worker, per flow-control key, in the limiter's order
 * (priority, then creation, then arrival here). An attempt of the key that ends in this process
 * hands its slot to the first of them (`handOver`): its call begins at once, where a grant through
 * the limiter takes four workflow-task round trips. A grant the limiter delivers from this process
 * starts the task's parked attempt the same way (`start`); an unstage, a cancel or the park's time
 * limit makes it stand down without calling (`standDown`).
 */
import { STAND_DOWN_NO_ROOM, STAND_DOWN_UNSTAGED } from '../workflows/staged-attempt-contract.js';

/**
 * How a park ended: handed a slot (the call may begin) or stood down (no call, no slot); `seq`:
 * the limiter's notice that unstaged the task, when that is what stood it down.
 */
export type ParkEnd = { kind: 'go' } | { kind: 'stoodDown'; reason: string; seq?: number };

export interface ParkedAttempt {
  taskId: string;
  request: number;
  priority: number;
  /** The task's creation time (ISO 8601): the order within a priority. */
  createdAt: string;
  /** The stage notice the task parks on (absent in older histories): a later unstage stands it down. */
  seq?: number;
}

interface Entry extends ParkedAttempt {
  arrival: number;
  end: (how: ParkEnd) => void;
}

/**
 * How long a staged task this worker was told of may take to park here before a hand-over stops
 * waiting for it: it may park in another worker, or its task may have been cancelled. A park here
 * takes 0.3–0.5 s after the notice on two loaded cores.
 */
const EXPECTED_FOR_MS = 3_000;

/**
 * How long a wake or an unstage for an attempt that has not parked here is kept for it: its park
 * may come seconds after on a loaded server (signals took 3.3 s in the flow-control stress), and
 * the task wakes an attempt that parked on an older word itself, later, once it has heard.
 */
const WAKE_KEPT_FOR_MS = 30_000;

/**
 * How long an attempt that ended keeps its slot for a staged task expected here (told of, not
 * parked yet) before it gives the slot back to the limiter. Without it, every slot that found the
 * head of the line not parked yet went round through the limiter (measured: one key at 87 % of
 * the engine instead of 101 % before the line's order was kept here); longer waits would cost
 * more than that round trip (~200 ms on the dev server) when the task parks in another worker.
 */
const HAND_OVER_WAIT_MS = 150;

/** A wake for a staged attempt that had not parked yet (started by the server, not yet running here). */
interface EarlyWake {
  how: ParkEnd;
  at: number;
}

export class SlotRelay {
  private readonly byKey = new Map<string, Entry[]>();
  /** Staged attempts running in this process (parked, or calling since), by task: a wake never finds them absent. */
  private readonly running = new Map<string, number>();
  /** Wakes that came before their attempt parked, by task and activity id (together unique to one park). */
  private readonly early = new Map<string, EarlyWake>();
  /**
   * Unstage notices this worker delivered, by task: a park that comes after, on an older notice
   * (its task had not heard yet), stands down as it arrives, never handed a slot the key no longer
   * stages for it (a pause).
   */
  private readonly unstaged = new Map<string, { seq: number; at: number }>();
  /** Staged tasks whose notice this worker delivered, not parked here yet, per key. */
  private readonly expected = new Map<string, Map<string, ParkedAttempt & { since: number }>>();
  private arrivals = 0;
  /** Attempts that ended and hold their slot for a staged task expected here, oldest first. */
  private readonly holding: Array<{ key: string; give: (to: ParkedAttempt | undefined) => void }> = [];

  /**
   * @param maxParked how many attempts may park here at once: they take slots of the worker's
   *   activity pool, which calls and webhooks share; one more stands down at once (`no room`).
   */
  constructor(private readonly maxParked = Number.POSITIVE_INFINITY) {}

  /** Why this worker parks nothing more (it is stopping: `standDownAll`). */
  private closedFor: string | undefined;

  /**
   * A staged task this worker delivered the notice of: until it parks (or for EXPECTED_FOR_MS),
   * no attempt it comes after is handed a slot here before it, so the line's order holds while
   * the staged attempts start at their own pace.
   */
  expect(key: string, attempt: ParkedAttempt): void {
    const expected = this.expected.get(key) ?? new Map<string, ParkedAttempt & { since: number }>();
    expected.set(attempt.taskId, { ...attempt, since: Date.now() });
    this.expected.set(key, expected);
  }

  /** The task is no longer staged (unstaged, granted) or has parked: nothing to wait for. */
  forget(taskId: string): void {
    for (const [key, expected] of this.expected) {
      if (!expected.delete(taskId)) continue;
      if (expected.size === 0) this.expected.delete(key);
      this.giveHeldSlots(key);
    }
  }

  /** A staged attempt of the task runs here until `leave`: from its start, parked or calling. */
  enter(taskId: string): void {
    this.running.set(taskId, (this.running.get(taskId) ?? 0) + 1);
  }

  leave(taskId: string): void {
    const count = (this.running.get(taskId) ?? 1) - 1;
    if (count > 0) this.running.set(taskId, count);
    else this.running.delete(taskId);
  }

  isRunning(taskId: string): boolean {
    return this.running.has(taskId);
  }

  /**
   * A wake for the staged attempt `activityId`, which the server says this worker runs but which
   * has not parked here yet (its start is on its way through the SDK): it applies as it parks.
   */
  wakeEarly(taskId: string, activityId: string, how: ParkEnd): void {
    const now = Date.now();
    for (const [id, wake] of this.early) if (now - wake.at > WAKE_KEPT_FOR_MS) this.early.delete(id);
    this.early.set(parkId(taskId, activityId), { how, at: now });
  }

  /**
   * Parks an attempt until it is handed a slot or stands down; settles once. A wake that came
   * before it (`wakeEarly`) settles it at once.
   */
  park(key: string, attempt: ParkedAttempt, activityId: string): Promise<ParkEnd> {
    const id = parkId(attempt.taskId, activityId);
    const early = this.early.get(id);
    if (early !== undefined) {
      this.early.delete(id);
      this.forget(attempt.taskId);
      return Promise.resolve(early.how);
    }
    const unstaged = this.unstaged.get(attempt.taskId);
    if (unstaged !== undefined && attempt.seq !== undefined && attempt.seq < unstaged.seq) {
      this.forget(attempt.taskId);
      return Promise.resolve({ kind: 'stoodDown', reason: STAND_DOWN_UNSTAGED, seq: unstaged.seq });
    }
    if (this.closedFor !== undefined) {
      this.forget(attempt.taskId);
      return Promise.resolve({ kind: 'stoodDown', reason: this.closedFor });
    }
    if (this.size >= this.maxParked) {
      this.forget(attempt.taskId);
      return Promise.resolve({ kind: 'stoodDown', reason: STAND_DOWN_NO_ROOM });
    }
    return new Promise<ParkEnd>((resolve) => {
      const entry: Entry = { ...attempt, arrival: ++this.arrivals, end: resolve };
      const line = this.byKey.get(key) ?? [];
      const at = line.findIndex((other) => comesBefore(entry, other));
      line.splice(at < 0 ? line.length : at, 0, entry);
      this.byKey.set(key, line);
      // In line first: a slot held for it (or for whoever it no longer holds back) goes to the
      // first parked now, which may be this one.
      this.forget(attempt.taskId);
      this.giveHeldSlots(key);
    });
  }

  /**
   * `handOver`, or, when a staged task expected here comes first and has not parked yet, the
   * same once it parks (within HAND_OVER_WAIT_MS); undefined: the slot goes back to the limiter.
   */
  async handOverSoon(key: string): Promise<ParkedAttempt | undefined> {
    const now = this.handOver(key);
    if (now !== undefined || !this.expects(key)) return now;
    return new Promise((resolve) => {
      const held = {
        key,
        give: (to: ParkedAttempt | undefined) => {
          clearTimeout(timer);
          this.holding.splice(this.holding.indexOf(held), 1);
          resolve(to);
        },
      };
      const timer = setTimeout(() => held.give(undefined), HAND_OVER_WAIT_MS);
      this.holding.push(held);
    });
  }

  /** The first attempt parked for `key`, handed a slot now; undefined when none is parked here. */
  handOver(key: string): ParkedAttempt | undefined {
    const line = this.byKey.get(key);
    const first = line?.[0];
    if (first === undefined || this.aheadOfFirst(key, first)) return undefined;
    const entry = line!.shift();
    if (line?.length === 0) this.byKey.delete(key);
    if (entry === undefined) return undefined;
    entry.end({ kind: 'go' });
    return strip(entry);
  }

  /** Starts the task's parked attempt for `request` with a slot the limiter granted; false when it is not parked here. */
  start(taskId: string, request: number): boolean {
    const started = this.end(taskId, { kind: 'go' }, request);
    this.forget(taskId);
    return started;
  }

  /** Makes the task's parked attempt stand down; false when none is parked here. */
  standDown(taskId: string, reason: string): boolean {
    const stoodDown = this.end(taskId, { kind: 'stoodDown', reason });
    this.forget(taskId);
    return stoodDown;
  }

  /**
   * The limiter's notice `seq` unstaged the task: its attempt parked on an older notice stands
   * down, and one that parks here later on an older notice does so as it arrives (for
   * WAKE_KEPT_FOR_MS: by then its task has heard, and wakes the park itself if need be).
   */
  unstage(taskId: string, seq: number): boolean {
    const now = Date.now();
    for (const [id, notice] of this.unstaged) if (now - notice.at > WAKE_KEPT_FOR_MS) this.unstaged.delete(id);
    if ((this.unstaged.get(taskId)?.seq ?? -1) < seq) this.unstaged.set(taskId, { seq, at: now });
    const stoodDown = this.end(taskId, { kind: 'stoodDown', reason: STAND_DOWN_UNSTAGED, seq }, undefined, seq);
    this.forget(taskId);
    return stoodDown;
  }

  /** Slots held for `key` go to what parked meanwhile, oldest slot first, while the line allows. */
  private giveHeldSlots(key: string): void {
    for (const held of this.holding.filter((h) => h.key === key)) {
      const to = this.handOver(key);
      if (to === undefined) return;
      held.give(to);
    }
  }

  private expects(key: string): boolean {
    return this.stillExpected(key).length > 0;
  }

  /** Whether a staged task expected here, not parked yet, comes before `first` in the line. */
  private aheadOfFirst(key: string, first: Entry): boolean {
    return this.stillExpected(key).some((attempt) => comesBefore({ ...attempt, arrival: 0, end: () => undefined }, first));
  }

  /** The staged tasks of `key` expected here, those told of more than EXPECTED_FOR_MS ago dropped. */
  private stillExpected(key: string): ParkedAttempt[] {
    const expected = this.expected.get(key);
    if (expected === undefined) return [];
    const now = Date.now();
    for (const [taskId, attempt] of expected) if (now - attempt.since > EXPECTED_FOR_MS) expected.delete(taskId);
    if (expected.size === 0) this.expected.delete(key);
    return [...expected.values()];
  }

  /** Makes every attempt parked here stand down (the worker is stopping): none waits out the shutdown's grace. */
  standDownAll(reason: string): number {
    // And every park after: an attempt the server had already given this worker may begin here
    // after the stop began (eagerly dispatched with a workflow task, or polled just before).
    this.closedFor = reason;
    for (const held of [...this.holding]) held.give(undefined);
    let count = 0;
    for (const line of this.byKey.values()) {
      for (const entry of line) {
        entry.end({ kind: 'stoodDown', reason });
        count++;
      }
    }
    this.byKey.clear();
    return count;
  }

  get size(): number {
    let count = 0;
    for (const line of this.byKey.values()) count += line.length;
    return count;
  }

  /** Ends the task's parked attempt (for `request`; parked on a notice before `seq`), if any. */
  private end(taskId: string, how: ParkEnd, request?: number, seq?: number): boolean {
    const matches = (entry: Entry): boolean =>
      entry.taskId === taskId &&
      (request === undefined || entry.request === request) &&
      (seq === undefined || entry.seq === undefined || entry.seq < seq);
    for (const [key, line] of this.byKey) {
      const index = line.findIndex(matches);
      if (index < 0) continue;
      const [entry] = line.splice(index, 1);
      if (line.length === 0) this.byKey.delete(key);
      entry!.end(how);
      return true;
    }
    return false;
  }
}

function comesBefore(a: Entry, b: Entry): boolean {
  if (a.priority !== b.priority) return a.priority < b.priority;
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt;
  return a.arrival < b.arrival;
}

/** Activity ids repeat across tasks (`callCallbackStaged-after-0-park-1`): a park is both. */
function parkId(taskId: string, activityId: string): string {
  return `${taskId}/${activityId}`;
}

function strip({ taskId, request, priority, createdAt }: Entry): ParkedAttempt {
  return { taskId, request, priority, createdAt };
}
