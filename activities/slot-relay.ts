/**
 * The staged attempts parked in this worker, per flow-control key, in the limiter's order
 * (priority, then creation, then arrival here). An attempt of the key that ends in this process
 * hands its slot to the first of them (`handOver`): its call begins at once, where a grant through
 * the limiter takes four workflow-task round trips. A grant the limiter delivers from this process
 * starts the task's parked attempt the same way (`start`); an unstage, a cancel or the park's time
 * limit makes it stand down without calling (`standDown`).
 */

/** How a park ended: handed a slot (the call may begin) or stood down (no call, no slot). */
export type ParkEnd = { kind: 'go' } | { kind: 'stoodDown'; reason: string };

export interface ParkedAttempt {
  taskId: string;
  request: number;
  priority: number;
  /** The task's creation time (ISO 8601): the order within a priority. */
  createdAt: string;
}

interface Entry extends ParkedAttempt {
  arrival: number;
  end: (how: ParkEnd) => void;
}

export class SlotRelay {
  private readonly byKey = new Map<string, Entry[]>();
  private arrivals = 0;

  /** Parks an attempt until it is handed a slot or stands down; `ended` settles once. */
  park(key: string, attempt: ParkedAttempt): Promise<ParkEnd> {
    return new Promise<ParkEnd>((resolve) => {
      const entry: Entry = { ...attempt, arrival: ++this.arrivals, end: resolve };
      const line = this.byKey.get(key) ?? [];
      const at = line.findIndex((other) => comesBefore(entry, other));
      line.splice(at < 0 ? line.length : at, 0, entry);
      this.byKey.set(key, line);
    });
  }

  /** The first attempt parked for `key`, handed a slot now; undefined when none is parked here. */
  handOver(key: string): ParkedAttempt | undefined {
    const line = this.byKey.get(key);
    const entry = line?.shift();
    if (line?.length === 0) this.byKey.delete(key);
    if (entry === undefined) return undefined;
    entry.end({ kind: 'go' });
    return strip(entry);
  }

  /** Starts the task's parked attempt for `request` with a slot the limiter granted; false when it is not parked here. */
  start(taskId: string, request: number): boolean {
    return this.end(taskId, { kind: 'go' }, request);
  }

  /** Makes the task's parked attempt stand down; false when none is parked here. */
  standDown(taskId: string, reason: string): boolean {
    return this.end(taskId, { kind: 'stoodDown', reason });
  }

  /** Makes every attempt parked here stand down (the worker is stopping): none waits out the shutdown's grace. */
  standDownAll(reason: string): number {
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

  private end(taskId: string, how: ParkEnd, request?: number): boolean {
    for (const [key, line] of this.byKey) {
      const index = line.findIndex((entry) => entry.taskId === taskId && (request === undefined || entry.request === request));
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

function strip({ taskId, request, priority, createdAt }: Entry): ParkedAttempt {
  return { taskId, request, priority, createdAt };
}
