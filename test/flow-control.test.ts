/**
 * Flow control on a real Temporal server: per-key parallelism and rate across workers, pause and
 * resume (also across a restart of the whole service), priority, cancel while waiting, key
 * isolation, a dead worker's slot, a terminated holder's slot, and the API's answers.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { workflowIdForTask } from '../workflows/task-contract.js';
import { runEntry, type Started } from '../src/dev/entry-points.js';
import { terminateRunning } from './support/cleanup.js';
import { eventually } from './support/eventually.js';
import { Receiver, type Responder } from './support/receiver.js';
import { TEST_SIGNING_SECRET, TEST_TASK_TOKEN_SECRET, startHarness, stopOwnServer, type Harness } from './support/harness.js';

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

const newKey = (name: string): string => `${name}-${randomUUID().slice(0, 8)}`;

/** Answers after `ms`, counting how many calls it holds at once. */
function concurrencyCounter(ms: number): { responder: Responder; peak: () => number } {
  let current = 0;
  let peak = 0;
  return {
    peak: () => peak,
    responder: async (_received, response) => {
      current++;
      peak = Math.max(peak, current);
      await new Promise((resolve) => setTimeout(resolve, ms));
      current--;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"ok":true}');
    },
  };
}

/** A worker in a child process on the harness's task queue. */
function startWorkerProcess(on: Harness): Started {
  const worker = runEntry('worker-main', {
    TEMPORAL_ADDRESS: on.config.temporalAddress!,
    ASYNCQUEUE_TASK_QUEUE: on.config.taskQueue,
    ASYNCQUEUE_SIGNING_SECRET: TEST_SIGNING_SECRET,
    ASYNCQUEUE_TASK_TOKEN_SECRET: TEST_TASK_TOKEN_SECRET,
    ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'true',
    LOG_LEVEL: 'warn',
  });
  spawned.push(worker);
  return worker;
}

/** Waits until `count` distinct workers poll the task queue for activities. */
async function waitForPollers(on: Harness, count: number): Promise<void> {
  await eventually(
    async () => {
      const response = await on.client.workflowService.describeTaskQueue({
        namespace: on.config.temporalNamespace,
        taskQueue: { name: on.config.taskQueue },
        taskQueueType: 2, // activity
      });
      return new Set((response.pollers ?? []).map((poller) => poller.identity)).size >= count ? true : undefined;
    },
    { timeoutMs: 60_000, what: `${count} activity pollers` },
  );
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
    { timeoutMs: 30_000, what: `key ${key}: ${what}` },
  );
}

describe('parallelism', () => {
  it('holds at most `parallelism` attempts in flight across two workers, and reaches it', async () => {
    const second = startWorkerProcess(harness);
    try {
      await waitForPollers(harness, 2);
      const key = newKey('reports');
      const counter = concurrencyCounter(400);
      receiver.always('/parallel', counter.responder);
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        ids.push(await harness.createTask({ callbackUrl: receiver.url('/parallel'), flowControl: { key, parallelism: 3 } }));
      }
      const busy = await waitForKey(harness, key, (view) => view.inFlight === 3 && view.waiting > 0, 'saturated');
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
