/**
 * `node dist/test/flow-control-keys-measure.js`: issue 14's "1,000 keys with waiting tasks at
 * once: memory and server load stated; no key starves", on the in-process stack (a dev server,
 * one worker, one API). KEYS (default 1000) keys at parallelism 1 are paused, TASKS_PER_KEY
 * (default 3) tasks are created on each, and once every key has all of them waiting every key is
 * resumed; callbacks answer after CALLBACK_MS (default 50). Prints the dev server's and this
 * process's (worker + API + receiver) CPU and RSS per phase, the time to drain, each key's wait
 * from its resume to its first and its last callback, whether every task was called, the peak in
 * flight per key as the receiver saw it (parallelism 1 must hold) and the workflows created.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import assert from 'node:assert/strict';
import { DevServer } from '../src/dev/dev-server.js';
import { Receiver } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { startHarness, type Harness } from './support/harness.js';
import { terminateRunning, visibilityCaughtUp } from './support/cleanup.js';
import { PhaseMonitor, describePhase } from './support/process-usage.js';
import { percentile } from './support/percentile.js';

const KEYS = Number(process.env.KEYS ?? 1000);
const TASKS_PER_KEY = Number(process.env.TASKS_PER_KEY ?? 3);
const CALLBACK_MS = Number(process.env.CALLBACK_MS ?? 50);
/** API requests in flight at once while setting up keys and checking their views. */
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16);
/**
 * Resumes in flight at once: more, so that every key competes from as near the same moment as the
 * API allows (each resume also queries its limiter, which waits behind the drain's work: at 16 at
 * once, 1,000 resumes took 188 s on the loaded 2-core machine and the first keys had drained
 * before the last were resumed). Each key's waits are timed from its own resume either way.
 */
const RESUME_CONCURRENCY = Number(process.env.RESUME_CONCURRENCY ?? 64);
/** How long every key holds its waiting tasks before the resume: the idle cost of waiting keys. */
const HOLD_MS = Number(process.env.HOLD_MS ?? 5_000);
const DRAIN_TIMEOUT_MS = Number(process.env.DRAIN_TIMEOUT_S ?? 300) * 1000;
const BATCH = 100;

/** One key as the receiver saw its calls (epoch ms). */
interface KeyCalls {
  key: string;
  calls: number;
  current: number;
  peak: number;
  first?: number;
  last?: number;
  resumedAt?: number;
}

/** Runs `work` on every item, at most `limit` at once. */
async function forEachBounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

const line = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
const ms = (value: number): string => `${Math.round(value)} ms`;

/** Every key gets a path of its own, so the receiver tells the keys apart without parsing bodies. */
function receiveKeys(receiver: Receiver, keys: KeyCalls[]): void {
  keys.forEach((stats, index) => {
    receiver.always(`/key-${index}`, async (received, response) => {
      stats.calls++;
      stats.current++;
      stats.peak = Math.max(stats.peak, stats.current);
      stats.first ??= received.receivedAt;
      stats.last = received.receivedAt;
      await new Promise((resolve) => setTimeout(resolve, CALLBACK_MS));
      stats.current--;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    });
  });
}

async function expectStatus(harness: Harness, method: string, path: string, status: number, body?: unknown): Promise<any> {
  const response = await harness.api(method, path, body);
  assert.equal(response.status, status, `${method} ${path}: ${JSON.stringify(response.body)}`);
  return response.body;
}

/** Pauses every key (PUT starts its limiter, pause holds it), then creates every task in batches. */
async function setUp(harness: Harness, receiver: Receiver, keys: KeyCalls[], monitor: PhaseMonitor): Promise<void> {
  await forEachBounded(keys, CONCURRENCY, async ({ key }) => {
    await expectStatus(harness, 'PUT', `/v1/flow-control/${key}`, 200, { parallelism: 1 });
    await expectStatus(harness, 'POST', `/v1/flow-control/${key}/pause`, 200);
  });
  line(describePhase(monitor.phase('create tasks')));

  // Task j of every key before task j + 1 of any: a batch spans many keys, as real traffic would.
  const bodies = Array.from({ length: TASKS_PER_KEY }, () =>
    keys.map(({ key }, index) => ({ callbackUrl: receiver.url(`/key-${index}`), flowControl: { key, parallelism: 1 } })),
  ).flat();
  const batches = Array.from({ length: Math.ceil(bodies.length / BATCH) }, (_, i) => bodies.slice(i * BATCH, (i + 1) * BATCH));
  // Two batches at once: each already starts 16 tasks at a time inside the API.
  await forEachBounded(batches, 2, async (batch) => {
    const { results } = await expectStatus(harness, 'POST', '/v1/tasks/batch', 200, { tasks: batch });
    const failed = (results as { status: number }[]).filter((result) => result.status !== 202);
    assert.equal(failed.length, 0, `batch create: ${JSON.stringify(failed.slice(0, 3))}`);
  });
  line(describePhase(monitor.phase('check all waiting')));

  // Every key shows all its tasks waiting: only then are tasks waiting on every key at once.
  let pending = keys;
  await eventually(
    async () => {
      const stillPending: KeyCalls[] = [];
      await forEachBounded(pending, CONCURRENCY, async (stats) => {
        const view = await expectStatus(harness, 'GET', `/v1/flow-control/${stats.key}`, 200);
        if (view.waiting !== TASKS_PER_KEY) stillPending.push(stats);
      });
      pending = stillPending;
      return pending.length === 0 ? true : undefined;
    },
    { timeoutMs: 180_000, intervalMs: 1_000, what: `${TASKS_PER_KEY} tasks waiting on each of ${KEYS} keys` },
  );
}

async function countWorkflows(harness: Harness): Promise<string> {
  await visibilityCaughtUp(harness);
  const count = async (filter: string): Promise<number> =>
    (await harness.client.workflow.count(`TaskQueue = '${harness.config.taskQueue}' AND ${filter}`)).count;
  const limiters = await count(`WorkflowType = 'flowLimiterWorkflow'`);
  const limitersRunning = await count(`WorkflowType = 'flowLimiterWorkflow' AND ExecutionStatus = 'Running'`);
  const tasks = await count(`WorkflowType = 'taskWorkflow'`);
  const tasksCompleted = await count(`WorkflowType = 'taskWorkflow' AND ExecutionStatus = 'Completed'`);
  return (
    `workflows: ${limiters} limiter runs (${limitersRunning} running; one per key unless one continued as new), ` +
    `${tasks} task workflows (${tasksCompleted} completed)`
  );
}

function reportKeys(keys: KeyCalls[], drainStart: number): void {
  const called = keys.filter((stats) => stats.first !== undefined && stats.last !== undefined && stats.resumedAt !== undefined);
  const firstWaits = called.map((stats) => stats.first! - stats.resumedAt!);
  const lastWaits = called.map((stats) => stats.last! - stats.resumedAt!);
  const distribution = (values: number[]): string =>
    `p50 ${ms(percentile(values, 50))} p99 ${ms(percentile(values, 99))} max ${ms(Math.max(...values))}`;
  const lastCall = Math.max(...called.map((stats) => stats.last!));
  const total = keys.reduce((sum, stats) => sum + stats.calls, 0);
  const starved = keys.filter((stats) => stats.calls < TASKS_PER_KEY);
  const extra = keys.filter((stats) => stats.calls > TASKS_PER_KEY);
  const peak = Math.max(...keys.map((stats) => stats.peak));
  const slowest = called.reduce((a, b) => (b.first! - b.resumedAt! > a.first! - a.resumedAt! ? b : a), called[0]!);

  line(
    `drain: ${total} of ${KEYS * TASKS_PER_KEY} callbacks in ${((lastCall + CALLBACK_MS - drainStart) / 1000).toFixed(1)} s ` +
      `from the first resume to the end of the last callback (${(total / ((lastCall + CALLBACK_MS - drainStart) / 1000)).toFixed(1)}/s)`,
  );
  if (called.length > 0) {
    // A yardstick for the waits: serving the keys in turn at the rate measured, every key would
    // have had its first callback this long after the first resume.
    const rate = total / ((lastCall + CALLBACK_MS - drainStart) / 1000);
    line(
      `per key, resume → first callback: ${distribution(firstWaits)} (slowest ${slowest.key}; keys served in turn: ${ms((KEYS / rate) * 1000)})`,
    );
    line(`per key, resume → last callback:  ${distribution(lastWaits)}`);
  }
  line(
    `${starved.length === 0 ? 'PASS' : 'NOT MET'}: no key starves: ${KEYS - starved.length} of ${KEYS} keys had all ` +
      `${TASKS_PER_KEY} tasks called${starved.length > 0 ? ` (short: ${starved.slice(0, 5).map((s) => `${s.key} ${s.calls}`)})` : ''}` +
      `${extra.length > 0 ? `; ${extra.length} keys had more calls than tasks (retries)` : ''}`,
  );
  line(`${peak <= 1 ? 'PASS' : 'NOT MET'}: parallelism 1 held: peak in flight per key ${peak} at the receiver`);
}

async function main(): Promise<void> {
  line(
    `${KEYS} keys × ${TASKS_PER_KEY} tasks, parallelism 1, ${CALLBACK_MS} ms callbacks; ` +
      `load average at start ${loadavg()
        .map((value) => value.toFixed(2))
        .join(' ')}`,
  );
  // A dev server of its own, not the harness's: its process id is what the load figures read.
  const server = await DevServer.start({ port: 0, uiPort: null, namespace: 'default' });
  const monitor = new PhaseMonitor(server.pid!, 'start worker + API');
  let harness: Harness | undefined;
  const receiver = await Receiver.start();
  try {
    harness = await startHarness({ temporalAddress: server.address });
    const run = randomUUID().slice(0, 8);
    const keys: KeyCalls[] = Array.from({ length: KEYS }, (_, index) => ({
      key: `keys-${run}-${index}`,
      calls: 0,
      current: 0,
      peak: 0,
    }));
    receiveKeys(receiver, keys);
    line(describePhase(monitor.phase('put + pause keys')));

    await setUp(harness, receiver, keys, monitor);
    line(describePhase(monitor.phase(`hold ${HOLD_MS / 1000} s, all waiting`)));
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
    line(describePhase(monitor.phase('resume + drain')));

    const drainStart = Date.now();
    const expected = KEYS * TASKS_PER_KEY;
    const drained = (): number => keys.reduce((sum, stats) => sum + stats.calls, 0);
    await forEachBounded(keys, RESUME_CONCURRENCY, async (stats) => {
      stats.resumedAt = Date.now();
      await expectStatus(harness!, 'POST', `/v1/flow-control/${stats.key}/resume`, 200);
    });
    line(`every key resumed ${((Date.now() - drainStart) / 1000).toFixed(1)} s after the first; ${drained()} callbacks so far`);
    try {
      await eventually(async () => (drained() >= expected ? true : undefined), {
        timeoutMs: DRAIN_TIMEOUT_MS,
        intervalMs: 200,
        what: `${expected} callbacks`,
      });
    } catch (err) {
      line(`drain incomplete: ${String(err)}`); // reported below as starved keys
    }
    await new Promise((resolve) => setTimeout(resolve, CALLBACK_MS));
    line(describePhase(monitor.phase('until workflows end')));
    reportKeys(keys, drainStart);

    // The tasks' workflows end after their last callback (the release, the result): let them.
    await eventually(
      async () => {
        const { count } = await harness!.client.workflow.count(
          `TaskQueue = '${harness!.config.taskQueue}' AND WorkflowType = 'taskWorkflow' AND ExecutionStatus = 'Running'`,
        );
        return count === 0 ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, what: 'every task workflow to end' },
    ).catch((err: unknown) => line(`settle: ${String(err)}`));
    line(describePhase(monitor.phase(`idle ${HOLD_MS / 1000} s after`)));
    // What the keys cost once drained: their limiters stay, idle.
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
    line(describePhase(monitor.phase('count + clean up')));
    line(await countWorkflows(harness));
  } finally {
    monitor.stop();
    if (harness !== undefined) {
      const terminated = await terminateRunning(harness);
      line(`cleanup: terminated ${terminated} workflows still running (the keys' limiters)`);
      await harness.close();
    }
    await receiver.close();
    await server.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
