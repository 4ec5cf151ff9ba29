/** After the load: every created task read until it has ended and its webhook settled. */
import type { TaskView } from '../../src/api/tasks/task-service.js';
import { sleep } from '../shared/timing.js';
import { log } from './run-log.js';
import type { Running } from './setup.js';
import { isStopping } from './stop-signal.js';
import { readTask } from './task-calls.js';
import { ENDINGS } from './task-mix.js';

export function isSettled(view: TaskView | undefined): boolean {
  return view !== undefined && ENDINGS.includes(view.status) && (view.webhook === undefined || view.webhook.status !== 'pending');
}

/** Polls every created task until it has ended and its webhook settled, or the time is up. */
export async function drain(run: Running, deadlineMs: number): Promise<void> {
  let open = run.tasks.filter((task) => task.id !== undefined);
  for (let sweep = 1; open.length > 0 && Date.now() < deadlineMs && !isStopping(); sweep++) {
    await forEachLimit(open, 16, async (task) => {
      const view = await readTask(run.baseUrl, task.id as string);
      if (view !== undefined) task.final = view;
    });
    open = open.filter((task) => !isSettled(task.final));
    const notEnded = open.filter((task) => task.final === undefined || !ENDINGS.includes(task.final.status)).length;
    log(`drain sweep ${sweep}: ${open.length} not settled (${notEnded} not ended, ${open.length - notEnded} webhook pending)`);
    if (open.length > 0) await sleep(2_000);
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
