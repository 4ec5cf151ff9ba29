/**
 * Flow control on a real Temporal server: per-key parallelism and rate across workers, pause and
 * resume (across a restart of the API and worker; the whole service, Temporal included: flow-control-restart.test.ts), priority, cancel while waiting, key
 * isolation, a dead worker's slot, a terminated holder's slot, and the API's answers.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  FLOW_LIMITER_WORKFLOW_TYPE,
  configureFlowSignal,
  limiterStartOptions,
  limiterWorkflowId,
} from '../workflows/flow-control-contract.js';
import { workflowIdForTask } from '../workflows/task-contract.js';
import type { Started } from '../src/dev/entry-points.js';
import { startWorkerProcess as startWorkerProcessOn, waitForPollers } from './support/worker-processes.js';
import { AsyncQueue, AsyncQueueApiError } from '../src/client/index.js';
import { runCli } from '../src/cli/main.js';
import { terminateRunning } from './support/cleanup.js';
import { eventually } from './support/eventually.js';
import { callbackAttemptsOnceClosed, grantsToEndedTasks } from './support/history.js';
import { concurrencyCounter, flowKey, newKey, waitForKey } from './support/flow-keys.js';
import { Receiver, respondJson } from './support/receiver.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';
import { tamperedCursor } from './support/cursors.js';

let harness: Harness;
let receiver: Receiver;
const spawned: Started[] = [];

before(async () => {
  harness = await startHarness();
  receiver = await Receiver.start();
});

after(async () => {
  await Promise.all(spawned.map(async (process) => process.stop('SIGKILL')));
  await terminateRunning(harness);
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

/** A worker in a child process on the harness's task queue, killed after the tests. */
function startWorkerProcess(on: Harness): Started {
  const worker = startWorkerProcessOn(on);
  spawned.push(worker);
  return worker;
}

describe('parallelism', () => {
  it('holds at most `parallelism` attempts in flight across two workers, and reaches it', async () => {
    const second = startWorkerProcess(harness);
    try {
      await waitForPollers(harness, 2);
      const key = newKey('reports');
      // Calls are held until the key has been seen saturated: on a slow machine the creates can
      // come no faster than the key drains, and a saturated moment could pass between two reads.
      let openGate = (): void => undefined;
      const gate = new Promise<void>((resolve) => {
        openGate = resolve;
      });
      const counter = concurrencyCounter(400, gate);
      receiver.always('/parallel', counter.responder);
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        ids.push(await harness.createTask({ callbackUrl: receiver.url('/parallel'), flowControl: { key, parallelism: 3 } }));
      }
      const busy = await waitForKey(harness, key, (view) => view.inFlight === 3 && view.waiting > 0, 'saturated');
      openGate();
      assert.equal(busy.parallelism, 3);
      assert.equal(busy.rate, null);
      assert.equal(busy.paused, false);
      const views = await Promise.all(ids.map((id) => harness.waitForEnd(id, { timeoutMs: 60_000 })));
      for (const view of views) {
        assert.equal(view.status, 'succeeded');
        assert.deepEqual(view.flowControl, { key, waiting: false });
        assert.equal(view.priority, 3);
      }
      assert.equal(counter.peak(), 3, `peak in flight ${counter.peak()}`);
      // Both workers ran attempts of the key, as the histories say.
      const identities = new Set<string>();
      for (const id of ids) {
        const history = await harness.client.workflow.getHandle(workflowIdForTask(id)).fetchHistory();
        for (const event of history.events ?? []) {
          const identity = event.activityTaskStartedEventAttributes?.identity;
          if (identity) identities.add(identity);
        }
      }
      assert.ok(identities.size >= 2, `attempts ran on ${[...identities].join(', ')}`);
      const idle = await waitForKey(harness, key, (view) => view.inFlight === 0, 'idle');
      assert.equal(idle.waiting, 0);
    } finally {
      await second.stop('SIGTERM');
    }
  });
});

describe('rate', () => {
  it('starts at most `rate` attempts in any window of `period` seconds, retries included', async () => {
    const key = newKey('llm');
    // Every task fails once (503), so retries count against the rate too.
    const seen = new Set<string>();
    receiver.always('/rate', (received, response) => {
      const task = String(received.headers['asyncqueue-task-id']);
      const first = !seen.has(task);
      seen.add(task);
      response.writeHead(first ? 503 : 200, { 'content-type': 'application/json' });
      response.end('{}');
    });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      ids.push(
        await harness.createTask({ callbackUrl: receiver.url('/rate'), retries: 2, flowControl: { key, rate: 3, period: 1 } }),
      );
    }
    const views = await Promise.all(ids.map((id) => harness.waitForEnd(id, { timeoutMs: 60_000 })));
    for (const view of views) assert.equal(view.status, 'succeeded');
    const times = receiver
      .to('/rate')
      .map((call) => call.receivedAt)
      .sort((a, b) => a - b);
    assert.equal(times.length, 12);
    for (let i = 0; i + 3 < times.length; i++) {
      // Any 4 consecutive starts span at least one period.
      assert.ok(times[i + 3]! - times[i]! >= 1000, `starts ${i}..${i + 3} within ${times[i + 3]! - times[i]!} ms`);
    }
    const view = await flowKey(harness, key);
    assert.deepEqual(
      { rate: view.rate, period: view.period, parallelism: view.parallelism },
      { rate: 3, period: 1, parallelism: null },
    );
  });
});

describe('pause and resume', () => {
  it('starts nothing while paused (the limiter holds every request) and drains on resume', async () => {
    const key = newKey('paused');
    const put = await harness.api('PUT', `/v1/flow-control/${key}`, { parallelism: 2 });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const paused = await harness.api('POST', `/v1/flow-control/${key}/pause`);
    assert.equal(paused.status, 200);
    assert.equal(paused.body.paused, true);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(await harness.createTask({ callbackUrl: receiver.url('/paused'), flowControl: { key, parallelism: 2 } }));
    }
    // Every task has asked for a slot and none was granted: no attempt can have started.
    const held = await waitForKey(harness, key, (view) => view.waiting === 3, 'three waiting');
    assert.equal(held.inFlight, 0);
    const waiting = await harness.task(ids[0]!);
    assert.equal(waiting.status, 'pending');
    assert.deepEqual(waiting.flowControl, { key, waiting: true });
    assert.equal(receiver.to('/paused').length, 0);

    const resumed = await harness.api('POST', `/v1/flow-control/${key}/resume`);
    assert.equal(resumed.status, 200);
    assert.equal(resumed.body.paused, false);
    for (const id of ids) assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
    assert.equal(receiver.to('/paused').length, 3);
  });

  it('keeps a pause and the limits across a restart of the API and the worker', async () => {
    const key = newKey('restart');
    const first = await startHarness();
    const env = { ASYNCQUEUE_TASK_QUEUE: first.config.taskQueue };
    let ids: string[];
    try {
      assert.equal((await first.api('PUT', `/v1/flow-control/${key}`, { parallelism: 1, rate: 50, period: 10 })).status, 200);
      assert.equal((await first.api('POST', `/v1/flow-control/${key}/pause`)).status, 200);
      ids = [
        await first.createTask({
          callbackUrl: receiver.url('/restart'),
          flowControl: { key, parallelism: 1, rate: 50, period: 10 },
        }),
        await first.createTask({
          callbackUrl: receiver.url('/restart'),
          flowControl: { key, parallelism: 1, rate: 50, period: 10 },
        }),
      ];
      await waitForKey(first, key, (view) => view.waiting === 2, 'two waiting');
    } finally {
      await first.close();
    }
    const second = await startHarness({ env, withoutWorker: true });
    try {
      // With no worker the limits and the pause read from what Temporal stores.
      const stored = await flowKey(second, key);
      assert.deepEqual(
        { parallelism: stored.parallelism, rate: stored.rate, period: stored.period, paused: stored.paused },
        { parallelism: 1, rate: 50, period: 10, paused: true },
      );
      await second.startWorker();
      const view = await waitForKey(second, key, (live) => live.waiting === 2, 'the live view');
      assert.deepEqual(view, { key, parallelism: 1, rate: 50, period: 10, paused: true, inFlight: 0, waiting: 2, staged: 0 });
      assert.equal(receiver.to('/restart').length, 0);
      assert.equal((await second.api('POST', `/v1/flow-control/${key}/resume`)).status, 200);
      for (const id of ids) assert.equal((await second.waitForEnd(id)).status, 'succeeded');
      assert.equal(receiver.to('/restart').length, 2);
    } finally {
      await second.close();
    }
  });
});

describe('priority', () => {
  it('serves waiters by priority, then in creation order', async () => {
    const key = newKey('priority');
    await harness.api('PUT', `/v1/flow-control/${key}`, { parallelism: 1 });
    await harness.api('POST', `/v1/flow-control/${key}/pause`);
    const order: Array<[string, number]> = [
      ['a', 5],
      ['b', 3],
      ['c', 1],
      ['d', 3],
      ['e', 1],
    ];
    for (const [name, priority] of order) {
      await harness.createTask({
        callbackUrl: receiver.url('/priority'),
        payload: { name },
        priority,
        flowControl: { key, parallelism: 1 },
      });
    }
    await waitForKey(harness, key, (view) => view.waiting === 5, 'five waiting');
    await harness.api('POST', `/v1/flow-control/${key}/resume`);
    const calls = await receiver.waitFor('/priority', 5, 60_000);
    assert.deepEqual(
      calls.map((call) => JSON.parse(call.body).name),
      ['c', 'e', 'b', 'd', 'a'],
    );
  });
});

describe('cancel while waiting', () => {
  it('ends the task at once, without a callback, and gives up its place', async () => {
    const key = newKey('cancel');
    await harness.api('PUT', `/v1/flow-control/${key}`, { parallelism: 1 });
    await harness.api('POST', `/v1/flow-control/${key}/pause`);
    const id = await harness.createTask({
      callbackUrl: receiver.url('/cancel-waiting'),
      webhookUrl: receiver.url('/cancel-waiting-hook'),
      flowControl: { key, parallelism: 1 },
    });
    await harness.waitForTask(id, (view) => view.flowControl?.waiting === true, 'waiting for a slot');
    const cancel = await harness.api('POST', `/v1/tasks/${id}/cancel`, { reason: 'no longer needed' });
    assert.equal(cancel.status, 202);
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'cancelled');
    assert.equal(view.attempts, 0);
    assert.equal(await callbackAttemptsOnceClosed(harness, id), 0);
    assert.equal(receiver.to('/cancel-waiting').length, 0);
    const [hook] = await receiver.waitFor('/cancel-waiting-hook', 1);
    assert.equal(JSON.parse(hook!.body).type, 'task.cancelled');
    await waitForKey(harness, key, (key) => key.waiting === 0 && key.inFlight === 0, 'no waiter left');
  });
});

describe('key isolation', () => {
  it('a saturated key slows neither another key nor tasks without a key', async () => {
    const busy = newKey('busy');
    const other = newKey('other');
    receiver.always('/hang', () => undefined); // never answers: holds the slot until the timeout
    const hung = await harness.createTask({
      callbackUrl: receiver.url('/hang'),
      timeout: 60,
      flowControl: { key: busy, parallelism: 1 },
    });
    const queued = await harness.createTask({ callbackUrl: receiver.url('/hang'), flowControl: { key: busy, parallelism: 1 } });
    await waitForKey(harness, busy, (view) => view.inFlight === 1 && view.waiting === 1, 'saturated');
    const otherIds = [
      await harness.createTask({ callbackUrl: receiver.url('/free'), flowControl: { key: other, parallelism: 1 } }),
      await harness.createTask({ callbackUrl: receiver.url('/free'), flowControl: { key: other, parallelism: 1 } }),
      await harness.createTask({ callbackUrl: receiver.url('/free') }),
    ];
    for (const id of otherIds) assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
    assert.equal((await harness.task(queued)).flowControl.waiting, true);
    for (const id of [hung, queued]) await harness.api('POST', `/v1/tasks/${id}/cancel`);
    for (const id of [hung, queued]) assert.equal((await harness.waitForEnd(id)).status, 'cancelled');
    await waitForKey(harness, busy, (view) => view.inFlight === 0 && view.waiting === 0, 'released');
  });
});

describe('slots of attempts that died', () => {
  it('a worker killed while holding a slot does not keep it (heartbeat timeout)', async () => {
    const own = await startHarness({ withoutWorker: true });
    try {
      const key = newKey('killed');
      receiver.always('/killed', (received, response) => {
        if (received.headers['asyncqueue-attempt'] === '1' && JSON.parse(received.body).first === true) return; // hangs
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{}');
      });
      const holder = startWorkerProcess(own);
      await waitForPollers(own, 1);
      const first = await own.createTask({
        callbackUrl: receiver.url('/killed'),
        payload: { first: true },
        timeout: 120,
        flowControl: { key, parallelism: 1 },
      });
      await receiver.waitFor('/killed', 1, 60_000);
      const second = await own.createTask({ callbackUrl: receiver.url('/killed'), flowControl: { key, parallelism: 1 } });
      await waitForKey(own, key, (view) => view.inFlight === 1 && view.waiting === 1, 'held by the doomed worker');
      holder.child.kill('SIGKILL');
      await own.startWorker();
      const views = await Promise.all([first, second].map((id) => own.waitForEnd(id, { timeoutMs: 60_000 })));
      assert.deepEqual(
        views.map((view) => view.status),
        ['succeeded', 'succeeded'],
      );
      assert.equal(views[0].attempts, 2);
      await waitForKey(own, key, (view) => view.inFlight === 0 && view.waiting === 0, 'idle');
    } finally {
      await terminateRunning(own);
      await own.close();
    }
  });

  it('a holder terminated from outside is found and its slot freed', async () => {
    const key = newKey('terminated');
    // The holder awaits async completion: no worker holds its attempt, so nothing but the
    // limiter's check of its holders can find that its workflow is gone.
    receiver.always('/terminated', respondJson(202, {}, { 'asyncqueue-completion': 'async' }));
    const holder = await harness.createTask({
      callbackUrl: receiver.url('/terminated'),
      timeout: 300,
      flowControl: { key, parallelism: 1 },
    });
    await harness.waitForTask(holder, (view) => view.status === 'running', 'awaiting completion');
    const next = await harness.createTask({
      callbackUrl: receiver.url('/after-terminated'),
      flowControl: { key, parallelism: 1 },
    });
    await waitForKey(harness, key, (view) => view.inFlight === 1 && view.waiting === 1, 'saturated');
    await harness.client.workflow.getHandle(workflowIdForTask(holder)).terminate('operator stopped it');
    // Holders are checked every 2 × the heartbeat timeout (2 s here) while waiters find no slot.
    assert.equal((await harness.waitForEnd(next, { timeoutMs: 30_000 })).status, 'succeeded');
    await waitForKey(harness, key, (view) => view.inFlight === 0 && view.waiting === 0, 'idle');
  });
});

describe('continue-as-new', () => {
  it('carries holders, waiters and limits across the limiter runs', async () => {
    const key = newKey('long-lived');
    const limits = { parallelism: 2, rate: null, period: 1 };
    const first = await harness.client.workflow.signalWithStart(FLOW_LIMITER_WORKFLOW_TYPE, {
      ...limiterStartOptions(
        { key, limits, paused: false, holderCheckIntervalMs: 60_000, maxHistoryEvents: 40 },
        harness.config.taskQueue,
      ),
      signal: configureFlowSignal,
      signalArgs: [{}],
    });
    const counter = concurrencyCounter(150);
    receiver.always('/long-lived', counter.responder);
    const ids: string[] = [];
    for (let i = 0; i < 16; i++) {
      ids.push(await harness.createTask({ callbackUrl: receiver.url('/long-lived'), flowControl: { key, parallelism: 2 } }));
    }
    for (const id of ids) assert.equal((await harness.waitForEnd(id, { timeoutMs: 60_000 })).status, 'succeeded');
    assert.equal(counter.peak(), 2);
    const idle = await waitForKey(harness, key, (view) => view.inFlight === 0 && view.waiting === 0, 'idle');
    assert.equal(idle.parallelism, 2);
    const firstRun = await harness.client.workflow.getHandle(first.workflowId, first.signaledRunId).describe();
    assert.equal(firstRun.status.name, 'CONTINUED_AS_NEW');
    // No run took up a line an earlier one had done with (a run whose staged line had emptied
    // once began the next with the line it had itself begun with): no grant found a task ended.
    assert.deepEqual(await grantsToEndedTasks(harness, first.workflowId, first.signaledRunId), []);
  });
});

describe('the API', () => {
  it('refuses bad flow control and priorities, naming the field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ flowControl: { key: 'k', parallelism: 0 } }, 'flowControl.parallelism: must be >= 1'],
      [{ flowControl: { key: 'k', parallelism: 10_001 } }, 'flowControl.parallelism: must be <= 10000'],
      [{ flowControl: { key: 'k', rate: 0 } }, 'flowControl.rate: must be >= 1'],
      [{ flowControl: { key: 'k', rate: 1, period: 3601 } }, 'flowControl.period: must be <= 3600'],
      [{ flowControl: { key: 'k' } }, 'flowControl: needs parallelism, rate or both'],
      [{ flowControl: { parallelism: 1 } }, 'flowControl.key: is required'],
      [
        { flowControl: { key: 'has space', parallelism: 1 } },
        'flowControl.key: must be 1–128 visible ASCII characters (no spaces)',
      ],
      [{ flowControl: { key: 'x'.repeat(129), parallelism: 1 } }, 'flowControl.key: must NOT have more than 128 characters'],
      [{ flowControl: { key: 'k', parallelism: 1, burst: 2 } }, 'flowControl.burst: is not a known field'],
      [{ priority: 0 }, 'priority: must be >= 1'],
      [{ priority: 6 }, 'priority: must be <= 5'],
    ];
    for (const [fields, message] of cases) {
      const response = await harness.api('POST', '/v1/tasks', { callbackUrl: receiver.url('/never'), ...fields });
      assert.equal(response.status, 400, JSON.stringify(fields));
      assert.equal(response.body.error.code, 'invalid_request');
      assert.equal(response.body.error.message, message);
    }
    const empty = await harness.api('PUT', `/v1/flow-control/${newKey('empty')}`, {});
    assert.equal(empty.status, 400);
    assert.equal(empty.body.error.message, 'body: needs parallelism, rate or both');
    assert.equal(receiver.to('/never').length, 0);
  });

  it('answers 404 for a key no task or PUT named, and lists the keys it knows', async () => {
    const unknown = newKey('unknown');
    for (const [method, path] of [
      ['GET', `/v1/flow-control/${unknown}`],
      ['POST', `/v1/flow-control/${unknown}/pause`],
      ['POST', `/v1/flow-control/${unknown}/resume`],
    ] as const) {
      const response = await harness.api(method, path);
      assert.equal(response.status, 404, `${method} ${path}`);
      assert.equal(response.body.error.code, 'flow_control_key_not_found');
    }
    const key = `odd/key?#%${randomUUID().slice(0, 8)}`;
    const put = await harness.api('PUT', `/v1/flow-control/${encodeURIComponent(key)}`, { rate: 10, period: 60 });
    assert.equal(put.status, 200);
    assert.deepEqual(put.body, {
      key,
      parallelism: null,
      rate: 10,
      period: 60,
      paused: false,
      inFlight: 0,
      waiting: 0,
      staged: 0,
    });
    const described = await harness.client.workflow.getHandle(limiterWorkflowId(key)).describe();
    assert.equal(described.status.name, 'RUNNING');
    const listed = await eventually(
      async () => {
        const list = await harness.api('GET', '/v1/flow-control');
        assert.equal(list.status, 200);
        return list.body.keys.find((view: any) => view.key === key);
      },
      { what: 'the key in the list' },
    );
    assert.equal(listed.rate, 10);
  });
});

describe('the SDK and the CLI', () => {
  it('aq.flowControl sets, reads, pauses, resumes and lists; the CLI does the same', async () => {
    const aq = new AsyncQueue({ baseUrl: harness.baseUrl });
    const key = newKey('sdk');
    assert.deepEqual(await aq.flowControl.set(key, { parallelism: 5 }), {
      key,
      parallelism: 5,
      rate: null,
      period: 1,
      paused: false,
      inFlight: 0,
      waiting: 0,
      staged: 0,
    });
    assert.equal((await aq.flowControl.pause(key)).paused, true);
    assert.equal((await aq.flowControl.get(key)).paused, true);
    assert.equal((await aq.flowControl.resume(key)).paused, false);
    await assert.rejects(aq.flowControl.get(newKey('missing')), (err: unknown) => {
      return err instanceof AsyncQueueApiError && err.status === 404 && err.code === 'flow_control_key_not_found';
    });
    await eventually(async () => ((await aq.flowControl.list()).some((view) => view.key === key) ? true : undefined), {
      what: 'the key in the SDK list',
    });

    const lines: string[] = [];
    const out = { write: (text: string) => lines.push(text), error: (text: string) => lines.push(text) };
    const cli = (...args: string[]) => runCli([...args, '--url', harness.baseUrl], {}, out);
    assert.equal(await cli('flow-control', 'set', key, '--rate', '10', '--period', '60', '--json'), 0);
    assert.deepEqual(JSON.parse(lines.at(-1)!), {
      key,
      parallelism: null,
      rate: 10,
      period: 60,
      paused: false,
      inFlight: 0,
      waiting: 0,
      staged: 0,
    });
    assert.equal(await cli('flow-control', 'pause', key), 0);
    assert.match(lines.at(-1)!, /\tpaused\t/);
    assert.equal(await cli('flow-control', 'set', key), 2);
    assert.equal(
      await cli(
        'tasks',
        'create',
        '--callback-url',
        receiver.url('/cli'),
        '--flow-key',
        key,
        '--rate',
        '10',
        '--priority',
        '1',
        '--json',
      ),
      0,
    );
    const { id } = JSON.parse(lines.at(-1)!);
    await harness.waitForTask(id, (view) => view.flowControl?.waiting === true && view.priority === 1, 'waiting (paused key)');
    assert.equal(await cli('flow-control', 'resume', key), 0);
    assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
  });

  it('pages the key list: every key once across pages of `limit`, a cursor it did not issue refused with a 400 naming it', async () => {
    const aq = new AsyncQueue({ baseUrl: harness.baseUrl });
    const mine = [newKey('page-a'), newKey('page-b'), newKey('page-c')];
    for (const key of mine) await aq.flowControl.set(key, { parallelism: 1 });
    // Visibility lists a limiter shortly after its start: walk the pages until all three show.
    const seen = await eventually(
      async () => {
        const keys: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await aq.flowControl.page({ limit: 2, ...(cursor !== undefined ? { cursor } : {}) });
          assert.ok(page.keys.length <= 2, `a page of ${page.keys.length}`);
          const names = page.keys.map((view) => view.key);
          assert.deepEqual(names, [...names].sort(), 'sorted by key within a page');
          keys.push(...names);
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined);
        return mine.every((key) => keys.includes(key)) ? keys : undefined;
      },
      { what: 'the three keys across the pages' },
    );
    assert.equal(new Set(seen).size, seen.length, 'no key on two pages');
    // The SDK's list follows the pages.
    const all = (await aq.flowControl.list({ pageSize: 2 })).map((view) => view.key);
    for (const key of mine) assert.ok(all.includes(key));

    const first = await harness.api('GET', '/v1/flow-control?limit=1');
    assert.equal(first.status, 200);
    assert.equal(typeof first.body.nextCursor, 'string');
    const tampered = tamperedCursor(first.body.nextCursor);
    for (const [query, field] of [
      [`cursor=${tampered}`, 'cursor'],
      ['cursor=bm90LWEtY3Vyc29y', 'cursor'],
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
    ] as const) {
      const response = await harness.api('GET', `/v1/flow-control?${query}`);
      assert.equal(response.status, 400, query);
      assert.match(response.body.error.message, new RegExp(`^${field}`), query);
    }

    const lines: string[] = [];
    const out = { write: (text: string) => lines.push(text), error: (text: string) => lines.push(text) };
    assert.equal(await runCli(['flow-control', 'list', '--limit', '1', '--json', '--url', harness.baseUrl], {}, out), 0);
    const page = JSON.parse(lines.at(-1)!);
    assert.equal(page.keys.length, 1);
    assert.equal(typeof page.nextCursor, 'string');
  });
});
