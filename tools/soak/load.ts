/** The soak's load: tasks started open-loop at a fixed rate, and a progress line every 30 s. */
import { sleep } from '../shared/timing.js';
import { log } from './run-log.js';
import type { Running } from './setup.js';
import { isStopping } from './stop-signal.js';
import { cancelTask, createTask } from './task-calls.js';
import { newTask } from './task-mix.js';

/** Open loop: tasks start at a fixed rate whatever the system does; slow answers do not slow the load. */
export async function generateLoad(run: Running, untilMs: number): Promise<void> {
  const intervalMs = 1000 / run.options.rate;
  const startedAt = Date.now();
  const maxTasks = Math.ceil(((untilMs - startedAt) / 1000) * run.options.rate);
  for (let seq = 0; seq < maxTasks && !isStopping(); seq++) {
    const dueAt = startedAt + seq * intervalMs;
    if (dueAt >= untilMs) break;
    await sleep(dueAt - Date.now());
    const task = newTask(seq, run.runId, run.rng, (p) => run.receiver.url(p));
    run.tasks.push(task);
    // A cancelled-kind task gets its cancel a second or two after the create is acknowledged.
    const cancelAfterMs = task.kind === 'cancelled' ? run.rng.int(1_000, 2_000) : 0;
    const work = createTask(run.baseUrl, task)
      .then(async () => {
        if (task.kind !== 'cancelled' || task.id === undefined || isStopping()) return;
        await sleep(cancelAfterMs);
        await cancelTask(run.baseUrl, task);
      })
      .catch((err: unknown) => log(`task ${task.key}: ${String(err)}`));
    run.inFlight.add(work);
    void work.finally(() => run.inFlight.delete(work));
  }
}

export async function reportProgress(run: Running, untilMs: number): Promise<void> {
  while (!isStopping() && Date.now() < untilMs) {
    await sleep(Math.min(30_000, untilMs - Date.now()));
    const created = run.tasks.filter((task) => task.id !== undefined).length;
    log(
      `progress: ${run.tasks.length} started, ${created} created, ${run.inFlight.size} creates/cancels in flight, ` +
        `${run.traffic.callbackCount} callback and ${run.traffic.webhookCount} webhook requests received, ${run.workers.alive} workers alive`,
    );
  }
}
