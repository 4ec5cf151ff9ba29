/**
 * `npm run soak -- --minutes N`: a soak test of AsyncQueue under injected faults.
 *
 * It runs a whole AsyncQueue on this machine — a file-backed Temporal dev server, the API (in this
 * process, so results are easy to read), two `worker-main` child processes (so they can be killed
 * for real) and a loopback receiver playing the app's callback and webhook endpoints — and feeds
 * it an open-loop mix of succeeding, failing, flaky, slow, cancelled and delayed tasks while it
 * restarts workers (SIGTERM and SIGKILL) and kill -9s the Temporal server. With `--cluster` the
 * Temporal is a cluster on PostgreSQL of the run's own (tools/cluster), and instead of the server
 * it kill -9s history and frontend in turn and restarts PostgreSQL once. Then it stops creating,
 * lets the system drain, and checks the books: created = succeeded + failed + cancelled, nothing
 * stuck, every outcome what its kind should give, every webhook delivered. Exit code 0 only then.
 *
 * Options: --minutes (10), --rate tasks/s (4), --drain-minutes (5), --workers (2), --seed,
 * --out report.json (default: a file in the OS temp folder), --cluster. All traffic stays on 127.0.0.1.
 *
 * This file runs the phases; beside it, one concern per file: options.ts, task-mix.ts, traffic.ts
 * (the receiver's endpoints), faults.ts (fault injection), engine.ts with temporal-server.ts and
 * temporal-cluster.ts (the Temporal it runs on and that engine's faults), load.ts, drain.ts,
 * books.ts (the bookkeeping and its verdict).
 */
import { writeFile } from 'node:fs/promises';
import { runTool } from '../shared/run-tool.js';
import { within } from '../shared/timing.js';
import { computeBooks } from './books.js';
import { printBooks } from './books-print.js';
import { drain } from './drain.js';
import { injectFaults } from './faults.js';
import { generateLoad, reportProgress } from './load.js';
import { parseOptions } from './options.js';
import { log, T0 } from './run-log.js';
import { cleanup, keepRunFolder, setUp } from './setup.js';
import { CANCEL_BUDGET_MS, CREATE_BUDGET_MS, listTaskIds } from './task-calls.js';

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const run = await setUp(options);
  // The warm-up is not part of the books: the list check below must not count it as a phantom.
  const warmupIds = await listTaskIds(run.baseUrl);

  const loadStart = Date.now();
  const loadUntil = loadStart + options.minutes * 60_000;
  await Promise.all([generateLoad(run, loadUntil), injectFaults(run, loadUntil), reportProgress(run, loadUntil)]);
  log(`load done: ${run.tasks.length} tasks started; waiting for ${run.inFlight.size} creates/cancels still in flight`);
  // Bounded: each create or cancel gives up after its own budget.
  await within(Promise.allSettled([...run.inFlight]), CREATE_BUDGET_MS + CANCEL_BUDGET_MS + 10_000);
  const loadSec = Math.round((Date.now() - loadStart) / 1000);

  const drainStart = Date.now();
  log(`draining (no more faults) for at most ${options.drainMinutes} min`);
  await drain(run, drainStart + options.drainMinutes * 60_000);
  const drainSec = Math.round((Date.now() - drainStart) / 1000);

  const books = computeBooks(run, { loadSec, drainSec, totalSec: Math.round((Date.now() - T0) / 1000) });
  const listed = await listTaskIds(run.baseUrl);
  if (listed !== undefined) {
    const ours = new Set(run.tasks.map((task) => task.id).filter((id): id is string => id !== undefined));
    const extra = [...listed].filter((id) => !ours.has(id) && !(warmupIds?.has(id) ?? false));
    books.listed = {
      listed: listed.size - (warmupIds?.size ?? 0),
      phantom: extra.length,
      missing: [...ours].filter((id) => !listed.has(id)).length,
    };
    // A task nobody created (two tasks from one key, say) breaks the books as surely as a lost one.
    if (extra.length > 0) books.ok = false;
  }
  printBooks(books);
  const { problems, ...summary } = books;
  process.stdout.write(
    `${JSON.stringify({ ...summary, faults: { ...summary.faults, log: undefined }, problems: problems.length })}\n`,
  );
  await writeFile(options.out, `${JSON.stringify(books, null, 2)}\n`);
  log(`full report (with every fault and problem) in ${options.out}`);
  if (!books.ok) keepRunFolder();
  return books.ok ? 0 : 1;
}

runTool({ name: 'soak', main, cleanup, log, interruptNote: 'stopping and cleaning up' });
