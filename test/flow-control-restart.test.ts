/**
 * Issue 14: a key's pause and limits, and the tasks waiting on it, outlive a restart of the whole
 * service — the API, the worker and the Temporal server itself — because they live in what
 * Temporal stores, not in any process. flow-control.test.ts restarts the API and the worker on a
 * server that stays up; here the server goes down too, with its data kept:
 *
 * - `npm test`: a dev server of this file's own on a SQLite file (the shared one is in memory,
 *   and other files use it), stopped and started again on that file and port;
 * - `npm run test:cluster`: a cluster of this file's own (tools/cluster, a temporary folder), every
 *   process stopped — the four Temporal services and PostgreSQL — and started again on the same
 *   folder and ports. It skips itself when no cluster can be started here, as cluster-faults does.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CALLBACK_ACTIVITY, workflowIdForTask } from '../workflows/task-contract.js';
import { DevServer, freePort } from '../src/dev/dev-server.js';
import { startCluster, type Cluster } from '../tools/cluster/cluster.js';
import { terminateRunning } from './support/cleanup.js';
import { TEST_ENGINE, testClusterOptions } from './support/engine.js';
import { eventually } from './support/eventually.js';
import { startHarness, type Harness } from './support/harness.js';
import { Receiver } from './support/receiver.js';

/** A Temporal server this file owns and may stop and start again on the same data and address. */
interface OwnTemporal {
  readonly what: string;
  readonly address: string;
  /** Where its data (and, for the cluster, its logs) are. */
  readonly dataDir: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** A process of it that exited without being asked to, if any. */
  failure(): Promise<string | undefined>;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

async function devServerOnFile(): Promise<OwnTemporal> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'asyncqueue-fc-restart-'));
  // The same port after the restart: the API and the worker are configured with one address.
  const port = await freePort();
  const dbFile = path.join(dataDir, 'temporal.db');
  const start = () => DevServer.start({ port, uiPort: null, namespace: 'default', dbFile });
  let server: DevServer | undefined = await start();
  return {
    what: 'the Temporal dev server (SQLite file)',
    address: server.address,
    dataDir,
    async stop() {
      await server?.stop();
      server = undefined;
    },
    async start() {
      server = await start();
    },
    failure: async () => undefined,
  };
}

async function clusterOnFolder(): Promise<OwnTemporal> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'asyncqueue-fc-restart-cluster-'));
  // Free ports at the first start, and the same ones (kept in the folder) at the second.
  const options = testClusterOptions(dataDir);
  let cluster: Cluster;
  try {
    cluster = await startCluster(options);
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const address = cluster.address;
  let running = true;
  return {
    what: 'every process of the Temporal cluster (four services and PostgreSQL)',
    address,
    dataDir,
    async stop() {
      await cluster.stop();
      running = false;
    },
    async start() {
      cluster = await startCluster(options);
      running = true;
      assert.equal(cluster.address, address, 'the cluster came back on its first frontend address');
    },
    async failure() {
      if (!running) return undefined;
      const failed = await Promise.race([cluster.failed, Promise.resolve(undefined)]);
      return failed?.message;
    },
  };
}

let skip: string | undefined;
let temporal: OwnTemporal | undefined;
const startedAt = Date.now();
try {
  temporal = TEST_ENGINE === 'cluster' ? await clusterOnFolder() : await devServerOnFile();
  process.stdout.write(`# own Temporal (${TEST_ENGINE}) at ${temporal.address} in ${seconds(Date.now() - startedAt)}\n`);
} catch (err) {
  // The dev server is what `npm test` runs on: no dev server here is a failure, not a skip.
  if (TEST_ENGINE !== 'cluster') throw err;
  skip = `no Temporal cluster can be started here: ${(err as Error).message.split('\n')[0]}`;
}

const KEY_LIMITS = { parallelism: 2 };
const TASKS = 5;
/** Long enough that both slots are taken before the first attempt ends, so the peak shows the limit. */
const HOLD_MS = 1_000;
/** Restarted processes replay histories and reconnect; the loaded CI runner gets slack. */
const AFTER_RESTART_MS = 90_000;

let receiver: Receiver;
let failed = false;

/** Answers after HOLD_MS, counting the calls it holds at once and the calls per task. */
function countingCallee(): { peak: () => number; perTask: Map<string, number> } {
  let current = 0;
  let peak = 0;
  const perTask = new Map<string, number>();
  receiver.always('/restart-all', async (received, response) => {
    const task = String(received.headers['asyncqueue-task-id']);
    perTask.set(task, (perTask.get(task) ?? 0) + 1);
    current++;
    peak = Math.max(peak, current);
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
    current--;
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end('{"ok":true}');
  });
  return { peak: () => peak, perTask };
}

async function flowKey(on: Harness, key: string): Promise<any> {
  const response = await on.api('GET', `/v1/flow-control/${encodeURIComponent(key)}`);
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return response.body;
}

async function waitForKey(on: Harness, key: string, predicate: (view: any) => boolean, what: string): Promise<any> {
  return eventually(
    async () => {
      const view = await flowKey(on, key);
      return predicate(view) ? view : undefined;
    },
    { timeoutMs: AFTER_RESTART_MS, intervalMs: 250, what: `key ${key}: ${what}` },
  );
}

/** Callback activities the task's workflow has scheduled so far, from its history. */
async function callbacksScheduled(on: Harness, taskId: string): Promise<number> {
  const history = await on.client.workflow.getHandle(workflowIdForTask(taskId)).fetchHistory();
  return (history.events ?? []).filter(
    (event) => event.activityTaskScheduledEventAttributes?.activityType?.name === CALLBACK_ACTIVITY,
  ).length;
}

/** The paused key holds every task: the limiter, each task's view and history, and the callee agree. */
async function assertAllHeld(on: Harness, key: string, ids: string[]): Promise<void> {
  const held = await waitForKey(on, key, (view) => view.waiting === ids.length, `${ids.length} waiting`);
  assert.deepEqual(held, {
    key,
    parallelism: 2,
    rate: null,
    period: 1,
    paused: true,
    inFlight: 0,
    waiting: ids.length,
    staged: 0,
  });
  for (const id of ids) {
    const view = await on.task(id);
    assert.equal(view.status, 'pending', JSON.stringify(view));
    assert.deepEqual(view.flowControl, { key, waiting: true });
    assert.equal(view.attempts, 0, JSON.stringify(view));
    assert.equal(await callbacksScheduled(on, id), 0, `task ${id} scheduled a callback while its key was paused`);
  }
  assert.equal(receiver.to('/restart-all').length, 0);
}

describe('flow control across a restart of every process', skip === undefined ? {} : { skip }, () => {
  before(async () => {
    receiver = await Receiver.start();
  });

  after(async () => {
    await receiver?.close();
    if (temporal === undefined) return;
    await temporal.stop();
    if (failed) process.stdout.write(`# ${temporal.what}: data and logs kept in ${temporal.dataDir}\n`);
    else await rm(temporal.dataDir, { recursive: true, force: true });
    process.stdout.write(`# flow-control-restart wall time ${seconds(Date.now() - startedAt)}\n`);
  });

  it('a pause outlives a restart of the whole service: the Temporal server, the API and the worker', async () => {
    const own = temporal!;
    const key = `restart-all-${randomUUID().slice(0, 8)}`;
    const callee = countingCallee();
    const first = await startHarness({ temporalAddress: own.address });
    const taskQueue = first.config.taskQueue;
    const ids: string[] = [];
    try {
      const put = await first.api('PUT', `/v1/flow-control/${key}`, KEY_LIMITS);
      assert.equal(put.status, 200, JSON.stringify(put.body));
      const paused = await first.api('POST', `/v1/flow-control/${key}/pause`);
      assert.equal(paused.status, 200, JSON.stringify(paused.body));
      assert.equal(paused.body.paused, true);
      for (let i = 0; i < TASKS; i++) {
        ids.push(await first.createTask({ callbackUrl: receiver.url('/restart-all'), flowControl: { key, ...KEY_LIMITS } }));
      }
      // Every task has asked the limiter for a slot (its signal is in the limiter's history) and
      // none was granted, so what the restart has to keep is all in Temporal's store.
      await assertAllHeld(first, key, ids);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      await first.close();
    }

    const down = Date.now();
    await own.stop();
    await own.start();
    const restartMs = Date.now() - down;

    const second = await startHarness({ temporalAddress: own.address, env: { ASYNCQUEUE_TASK_QUEUE: taskQueue } });
    try {
      // `waiting: 5` can only be the limiter's live view, replayed from its history by the new
      // worker: the stored one (its memo) dates from the pause, before any task asked for a slot.
      await assertAllHeld(second, key, ids);
      const heldAt = Date.now();

      const resumed = await second.api('POST', `/v1/flow-control/${key}/resume`);
      assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
      assert.equal(resumed.body.paused, false);
      const views = await Promise.all(ids.map((id) => second.waitForEnd(id, { timeoutMs: AFTER_RESTART_MS })));
      for (const view of views) {
        assert.equal(view.status, 'succeeded', JSON.stringify(view));
        assert.equal(view.attempts, 1, JSON.stringify(view));
        assert.deepEqual(view.flowControl, { key, waiting: false });
      }
      assert.deepEqual(new Set(callee.perTask.keys()), new Set(ids), 'a callback for every task, and only for them');
      for (const [task, calls] of callee.perTask) assert.equal(calls, 1, `task ${task} called ${calls} times`);
      // The limit of 2 survived the restart: reached, and never exceeded.
      assert.equal(callee.peak(), 2, `peak in flight ${callee.peak()}`);
      const idle = await waitForKey(second, key, (view) => view.inFlight === 0, 'idle');
      assert.deepEqual(idle, { key, parallelism: 2, rate: null, period: 1, paused: false, inFlight: 0, waiting: 0, staged: 0 });
      assert.equal(await own.failure(), undefined);
      process.stdout.write(
        `# ${own.what} stopped and started in ${seconds(restartMs)}; ` +
          `API and worker back and the ${TASKS} waiters seen ${seconds(heldAt - down - restartMs)} after that; ` +
          `all succeeded ${seconds(Date.now() - heldAt)} after the resume\n`,
      );
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      await terminateRunning(second).catch(() => undefined);
      await second.close();
    }
  });
});
