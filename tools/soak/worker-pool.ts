/** The soak's worker processes, real children so that they can be stopped and killed for real. */
import { runEntry, type Started } from '../../src/dev/entry-points.js';
import { within } from '../shared/timing.js';
import { recordFault } from './faults.js';
import { log } from './run-log.js';

/**
 * `worker-main` processes in fixed slots. A worker we did not stop on purpose that exits is itself
 * a finding (recorded as a fault) and is replaced, a bounded number of times.
 */
export class WorkerPool {
  private readonly slots: Started[] = [];
  private readonly stoppedOnPurpose = new WeakSet<Started>();
  private closing = false;
  private unexpectedExits = 0;
  private restarts = 0;

  constructor(
    private readonly env: Record<string, string>,
    private readonly size: number,
  ) {}

  start(): void {
    for (let slot = 0; slot < this.size; slot++) this.slots[slot] = this.spawn(slot);
  }

  get alive(): number {
    return this.slots.filter((worker) => worker.child.exitCode === null && worker.child.signalCode === null).length;
  }

  /** Stops one worker (taking turns across slots) with `signal` and starts its replacement at once. */
  async restartOne(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const slot = this.restarts++ % this.size;
    const old = this.slots[slot];
    if (old === undefined) return;
    this.stoppedOnPurpose.add(old);
    recordFault(
      signal === 'SIGTERM' ? 'worker-sigterm' : 'worker-sigkill',
      `${signal} worker ${slot} (pid ${old.child.pid}), replacement starting`,
    );
    const stoppingAt = Date.now();
    const exited = old.stop(signal);
    // Like a rolling deploy: the replacement comes up while the old one drains.
    this.slots[slot] = this.spawn(slot);
    // worker-main waits at most ASYNCQUEUE_WORKER_SHUTDOWN_GRACE (5 s) for in-flight calls.
    const code = await within(exited, 20_000);
    if (code === undefined && old.child.exitCode === null) {
      log(`worker ${slot} (pid ${old.child.pid}) still running 20 s after ${signal}: SIGKILL`);
      await old.stop('SIGKILL');
    }
    log(
      `worker ${slot} (pid ${old.child.pid}) exited: code ${old.child.exitCode}, signal ${old.child.signalCode}, after ${Date.now() - stoppingAt} ms`,
    );
  }

  async closeAll(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((worker) => worker.stop('SIGKILL')));
  }

  private spawn(slot: number): Started {
    const worker = runEntry('worker-main', this.env);
    void worker.exited.then((code) => {
      if (this.closing || this.stoppedOnPurpose.has(worker)) return;
      this.unexpectedExits++;
      const tail = worker.output().trim().split('\n').slice(-5).join(' | ');
      recordFault(
        'worker-died',
        `worker ${slot} (pid ${worker.child.pid}) exited by itself: code ${code}, signal ${worker.child.signalCode}; output: ${tail}`,
      );
      if (this.unexpectedExits > 30) return; // something is badly wrong; the books will say so
      setTimeout(() => {
        if (!this.closing && this.slots[slot] === worker) this.slots[slot] = this.spawn(slot);
      }, 1_000);
    });
    return worker;
  }
}
