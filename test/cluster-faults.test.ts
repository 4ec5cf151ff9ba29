/**
 * Faults only a cluster allows: one Temporal service killed (`kill -9`) under load and started
 * again, and PostgreSQL restarted under the running services. The file starts a cluster of its
 * own (tools/cluster: a fresh temporary folder, free ports, no UI), so it runs in
 * `npm run test:cluster` only, and skips itself when no cluster can be started here.
 *
 * Each test drives a load of tasks (short callbacks, some held a few seconds, all with webhooks;
 * creates carry an Idempotency-Key and are retried on 503, as a client should), injects the fault
 * in the middle of it, and then demands: no create answered anything but 202/200/503, one task
 * per key, every task ended succeeded with its webhook delivered (at least once, one `webhook-id`
 * per task), and nothing left running on the task queue.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster } from '../tools/cluster/cluster.js';
import type { TemporalService } from '../tools/cluster/ports.js';
import { visibilityCaughtUp } from './support/cleanup.js';
import { onClusterOnly, testClusterOptions } from './support/engine.js';
import { eventually } from './support/eventually.js';
import { startHarness, type Harness } from './support/harness.js';
import { Receiver, type ReceivedRequest } from './support/receiver.js';

const TASKS = 40;
/** Every third callback is held this long before it answers; the others answer at once. */
const HELD_MS = 3_000;
const QUICK_MS = 50;
const END_TIMEOUT_MS = 120_000;

const fileStartedAt = Date.now();
let skip = onClusterOnly('starts, kills and restarts a Temporal cluster of its own').skip;
let cluster: Cluster | undefined;
let dataDir: string | undefined;
if (skip === undefined) {
  dataDir = await mkdtemp(path.join(tmpdir(), 'asyncqueue-cluster-faults-'));
  const startedAt = Date.now();
  try {
    cluster = await startCluster(testClusterOptions(dataDir));
    process.stdout.write(`# own cluster at ${cluster.address} in ${((Date.now() - startedAt) / 1000).toFixed(1)} s\n`);
  } catch (err) {
    skip = `no Temporal cluster can be started here: ${(err as Error).message.split('\n')[0]}`;
    await rm(dataDir, { recursive: true, force: true });
    dataDir = undefined;
  }
}

let receiver: Receiver;
let failures = 0;

/** Creates, their answers, and which task each key got. */
interface Load {
  keys: string[];
  /** Every id each key was answered with (one per key, or the keys are broken). */
  ids: Map<string, Set<string>>;
  answers: { key: string; status: number; at: number }[];
  /** Answers other than 200, 202 and 503, and network errors: each one a bug. */
  unexpected: string[];
  done: Promise<void>;
  /** Lets the last quarter of the creates go (they wait for the fault, so creates always meet it). */
  releaseRest: () => void;
}

/** A client that retries its create with the same key until it is answered 202 or 200. */
async function createWithKey(harness: Harness, load: Load, key: string, body: Record<string, unknown>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    if (attempt > 2_000) throw new Error(`no 202 or 200 for ${key}`);
    try {
      const response = await harness.api('POST', '/v1/tasks', body, { 'idempotency-key': key });
      load.answers.push({ key, status: response.status, at: Date.now() });
      if (response.status === 202 || response.status === 200) {
        load.ids.set(key, (load.ids.get(key) ?? new Set()).add(response.body.id as string));
        return;
      }
      if (response.status !== 503) load.unexpected.push(`${key}: ${response.status} ${JSON.stringify(response.body)}`);
    } catch (err) {
      load.unexpected.push(`${key}: ${(err as Error).message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * TASKS creates, one every 100 ms, each retried until answered; the last quarter only once
 * `releaseRest` is called (after the fault): on a slow machine the first three quarters can all
 * be answered before the fault lands, and the test must see creates meet it.
 */
function startLoad(harness: Harness, prefix: string): Load {
  const keys = Array.from({ length: TASKS }, (_, i) => `${prefix}-${i}`);
  let releaseRest = (): void => undefined;
  const rest = new Promise<void>((resolve) => {
    releaseRest = resolve;
  });
  const load: Load = { keys, ids: new Map(), answers: [], unexpected: [], done: Promise.resolve(), releaseRest };
  const firstRest = Math.floor((TASKS * 3) / 4);
  load.done = Promise.all(
    keys.map(async (key, i) => {
      if (i >= firstRest) await rest;
      await new Promise((resolve) => setTimeout(resolve, (i >= firstRest ? i - firstRest : i) * 100));
      await createWithKey(harness, load, key, taskBody(prefix, key, i));
    }),
  ).then(() => undefined);
  return load;
}

function taskBody(prefix: string, key: string, i: number): Record<string, unknown> {
  return {
    callbackUrl: receiver.url(`/${prefix}/callback`),
    webhookUrl: receiver.url(`/${prefix}/webhook`),
    payload: { key, holdMs: i % 3 === 0 ? HELD_MS : QUICK_MS },
    retries: 20,
    timeout: 10,
  };
}

function answerCallbacks(prefix: string): void {
  receiver.always(`/${prefix}/callback`, (received, response) => {
    const { key, holdMs } = JSON.parse(received.body) as { key: string; holdMs: number };
    setTimeout(() => {
      if (response.destroyed) return; // the worker hung up (cut off): the call will be retried
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ key, heldMs: holdMs }));
    }, holdMs);
  });
}

/** Polls every task not yet ended (one GET at a time) until all have; when each was first seen ended. */
async function waitAllEnded(harness: Harness, ids: string[]): Promise<Map<string, { view: any; at: number }>> {
  const ended = new Map<string, { view: any; at: number }>();
  const deadline = Date.now() + END_TIMEOUT_MS;
  while (ended.size < ids.length) {
    for (const id of ids) {
      if (ended.has(id)) continue;
      const response = await harness.api('GET', `/v1/tasks/${id}`).catch(() => undefined);
      const view = response?.status === 200 ? response.body : undefined;
      if (['succeeded', 'failed', 'cancelled'].includes(view?.status) && view.webhook?.status !== 'pending') {
        ended.set(id, { view, at: Date.now() });
      }
    }
    if (ended.size === ids.length) break;
    if (Date.now() > deadline) {
      const stuck = ids.filter((id) => !ended.has(id));
      const views = await Promise.all(
        stuck.slice(0, 3).map(async (id) => JSON.stringify((await harness.api('GET', `/v1/tasks/${id}`)).body)),
      );
      assert.fail(`${stuck.length} of ${ids.length} tasks had not ended after ${END_TIMEOUT_MS} ms, e.g. ${views.join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return ended;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The checks every fault ends with; returns when the last task ended. */
async function assertNothingLost(harness: Harness, prefix: string, load: Load): Promise<number> {
  await load.done;
  // Every key once more, after the fact: still its one task.
  await Promise.all(load.keys.map((key, i) => createWithKey(harness, load, key, taskBody(prefix, key, i))));
  assert.deepEqual(load.unexpected, [], 'creates answered only 202, 200 or 503');
  for (const key of load.keys) assert.equal(load.ids.get(key)?.size, 1, `${key} → ${[...(load.ids.get(key) ?? [])].join(', ')}`);
  const ids = load.keys.map((key) => [...load.ids.get(key)!][0]!);
  assert.equal(new Set(ids).size, TASKS, 'one task per key, no two keys the same task');

  const ended = await waitAllEnded(harness, ids);
  const webhooks = receiver.to(`/${prefix}/webhook`);
  const byTask = new Map<string, ReceivedRequest[]>();
  for (const delivery of webhooks) {
    const id = String(delivery.headers['asyncqueue-task-id']);
    byTask.set(id, [...(byTask.get(id) ?? []), delivery]);
  }
  for (const id of ids) {
    const { view } = ended.get(id)!;
    assert.equal(view.status, 'succeeded', JSON.stringify(view));
    assert.equal(view.webhook.status, 'delivered', JSON.stringify(view));
    const deliveries = byTask.get(id) ?? [];
    assert.ok(deliveries.length >= 1, `task ${id}: no webhook delivery`);
    assert.deepEqual(new Set(deliveries.map((d) => d.headers['webhook-id'])), new Set([`msg_${id}_webhook`]));
    assert.equal(JSON.parse(deliveries[0]!.body).type, 'task.succeeded');
  }
  // A callback repeated (its answer lost in the fault) kept its webhook-id, so callees can deduplicate.
  for (const call of receiver.to(`/${prefix}/callback`)) {
    assert.equal(call.headers['webhook-id'], `msg_${String(call.headers['asyncqueue-task-id'])}_callback`);
  }
  // Exactly the tasks created: no webhook for any other task, no other workflow on the queue.
  assert.deepEqual(new Set(byTask.keys()), new Set(ids));
  await visibilityCaughtUp(harness);
  const queue = `TaskQueue = '${harness.config.taskQueue}'`;
  assert.equal((await harness.client.workflow.count(queue)).count, TASKS);
  await eventually(
    async () =>
      (await harness.client.workflow.count(`${queue} AND ExecutionStatus = 'Running'`)).count === 0 ? true : undefined,
    { timeoutMs: 30_000, what: 'no workflow still running on the queue' },
  );
  const callbacks = receiver.to(`/${prefix}/callback`).length;
  process.stdout.write(
    `# ${prefix}: ${TASKS} tasks, ${callbacks} callback requests (${callbacks - TASKS} repeated), ` +
      `${webhooks.length} webhook deliveries (${webhooks.length - TASKS} duplicates, deduplicated by webhook-id), ` +
      `${load.answers.filter((a) => a.status === 503).length} creates answered 503\n`,
  );
  const failure = await Promise.race([cluster!.failed, Promise.resolve(undefined)]);
  assert.equal(failure, undefined, failure?.message);
  return Math.max(...[...ended.values()].map((e) => e.at));
}

/**
 * Runs the load; once callbacks are under way kills `target` with `signal`, waits until creates
 * have met the outage (answered 503), and starts it again. Prints how long recovery took.
 */
async function faultUnderLoad(
  harness: Harness,
  prefix: string,
  target: TemporalService | 'postgres',
  signal: NodeJS.Signals,
  what: string,
): Promise<void> {
  answerCallbacks(prefix);
  const load = startLoad(harness, prefix);
  // Mid-load: a quarter of the callbacks called, held ones in flight, creates still coming.
  await receiver.waitFor(`/${prefix}/callback`, TASKS / 4, 30_000);
  const killedAt = Date.now();
  await cluster!.kill(target, signal);
  load.releaseRest();
  await eventually(async () => (load.answers.filter((a) => a.at > killedAt && a.status === 503).length >= 3 ? true : undefined), {
    timeoutMs: 30_000,
    what: `creates answered 503 with ${target} down`,
  });
  const restartingAt = Date.now();
  await cluster!.restart(target);
  const backAt = Date.now();
  const lastEndedAt = await assertNothingLost(harness, prefix, load);

  const during = load.answers.filter((a) => a.at > killedAt && a.at < restartingAt);
  const firstCreated = load.answers.find((a) => a.at >= restartingAt && (a.status === 202 || a.status === 200))?.at;
  const firstCall = receiver.requests.find((r) => r.path.startsWith(`/${prefix}/`) && r.receivedAt >= restartingAt)?.receivedAt;
  const since = (at: number | undefined) => (at === undefined ? 'none' : seconds(at - restartingAt));
  process.stdout.write(
    `# ${what}: down ${seconds(restartingAt - killedAt)} (${during.length} creates meanwhile, ` +
      `${during.filter((a) => a.status === 503).length} answered 503), restart took ${seconds(backAt - restartingAt)}; ` +
      `from the restart: first create accepted ${since(firstCreated)}, first request to the receiver ${since(firstCall)}, ` +
      `every task ended ${since(lastEndedAt)}\n`,
  );
}

async function withHarness(test: (harness: Harness) => Promise<void>): Promise<void> {
  const harness = await startHarness({
    temporalAddress: cluster!.address,
    env: { ASYNCQUEUE_TEMPORAL_RPC_TIMEOUT: '2', ASYNCQUEUE_QUERY_TIMEOUT: '2' },
    // The API logs its 5xx with their cause: a 500 here must say what it was.
    logger: { level: 'error' },
  });
  try {
    await test(harness);
  } catch (err) {
    failures++;
    throw err;
  } finally {
    await harness.close();
  }
}

describe('cluster faults under load', skip === undefined ? {} : { skip }, () => {
  before(async () => {
    receiver = await Receiver.start();
  });

  after(async () => {
    await receiver?.close();
    await cluster?.stop();
    if (dataDir !== undefined) {
      if (failures === 0) await rm(dataDir, { recursive: true, force: true });
      else process.stdout.write(`# cluster logs kept in ${path.join(dataDir, 'logs')}\n`);
    }
    process.stdout.write(`# cluster-faults wall time ${seconds(Date.now() - fileStartedAt)}\n`);
  });

  it('kill -9 of the history service mid-load, then a restart: no task lost or stuck, every webhook delivered', async () => {
    await withHarness((harness) => faultUnderLoad(harness, 'history', 'history', 'SIGKILL', 'history kill -9'));
  });

  it('kill -9 of the frontend mid-load: creates answer 503 meanwhile, one task per key after, every webhook delivered', async () => {
    await withHarness((harness) => faultUnderLoad(harness, 'frontend', 'frontend', 'SIGKILL', 'frontend kill -9'));
  });

  it('PostgreSQL stopped and started again under load (data kept): no task lost or stuck, every webhook delivered', async () => {
    // SIGINT: PostgreSQL's fast shutdown (sessions ended, checkpoint), then a start on the same data.
    await withHarness((harness) => faultUnderLoad(harness, 'postgres', 'postgres', 'SIGINT', 'PostgreSQL restart'));
  });
});
