/**
 * Eager start, as `npm start` runs the API and the worker in one process: a task starts through
 * the worker's connection, and Temporal hands its first workflow task to that worker in the
 * start's answer. What a create promises stays the same on that path: the task runs end to end,
 * an idempotent repeat finds it, a conflicting one is refused (Temporal's ALREADY_EXISTS through
 * the worker's native connection); with no worker to take it the start is an ordinary one. (A
 * Temporal outage on this path: temporal-outage.test.ts.)
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Receiver } from './support/receiver.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

let harness: Harness;
let receiver: Receiver;

before(async () => {
  harness = await startHarness({ eagerStart: true });
  receiver = await Receiver.start();
});

after(async () => {
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

/** `asyncqueue_tasks_started_eagerly_total` as the API's /metrics says it. */
async function eagerStarts(): Promise<number> {
  const text = await (await fetch(`${harness.baseUrl}/metrics`)).text();
  const value = /^asyncqueue_tasks_started_eagerly_total (\d+)$/m.exec(text)?.[1];
  assert.ok(value !== undefined, 'the API exposes asyncqueue_tasks_started_eagerly_total');
  return Number(value);
}

describe('eager start (API and worker in one process)', () => {
  it("runs a task whose first workflow task came back in the start's answer", async () => {
    const before = await eagerStarts();
    const id = await harness.createTask({
      callbackUrl: receiver.url('/eager'),
      webhookUrl: receiver.url('/eager-hook'),
      payload: { eager: true },
    });
    const ended = await harness.waitForTask(id, (view) => view.webhook?.status === 'delivered', 'webhook delivered');
    assert.equal(ended.status, 'succeeded');
    assert.deepEqual(JSON.parse(receiver.to('/eager')[0]!.body), { eager: true });
    // Counted when Temporal's answer carried the workflow task: the server did start it eagerly.
    assert.equal(await eagerStarts(), before + 1);
  });

  it('starts a burst of tasks eagerly: the open polls leave the worker slots to take them', async () => {
    const before = await eagerStarts();
    // 30 at once: with the SDK's 40 workflow-task slots, 30 held by open polls, most of these
    // found none free and went through the task queue (task-worker.ts, WORKFLOW_TASK_SLOTS).
    const ids = await Promise.all(
      Array.from({ length: 30 }, (_, i) => harness.createTask({ callbackUrl: receiver.url('/eager-burst'), payload: { i } })),
    );
    assert.equal(await eagerStarts(), before + ids.length);
    for (const id of ids) assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
  });

  it('finds the task on an idempotent repeat and refuses a conflicting one', async () => {
    const key = { 'idempotency-key': `eager-${randomUUID()}` };
    const body = { callbackUrl: receiver.url('/eager-idem'), delay: 3600 };
    const first = await harness.api('POST', '/v1/tasks', body, key);
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const started = await eagerStarts();
    const repeat = await harness.api('POST', '/v1/tasks', body, key);
    assert.equal(repeat.status, 200, JSON.stringify(repeat.body));
    assert.equal(repeat.body.id, first.body.id);
    assert.equal(await eagerStarts(), started, 'a repeat starts nothing');
    const conflict = await harness.api('POST', '/v1/tasks', { ...body, delay: 60 }, key);
    assert.equal(conflict.status, 409, JSON.stringify(conflict.body));
    assert.equal((await harness.api('POST', `/v1/tasks/${first.body.id}/cancel`)).status, 202);
    await harness.waitForEnd(first.body.id);
  });

  it('starts an ordinary task when no worker polls through the connection, which a worker then runs', async () => {
    await harness.stopWorker();
    const before = await eagerStarts();
    let id: string;
    try {
      id = await harness.createTask({ callbackUrl: receiver.url('/eager-later') });
      assert.equal(await eagerStarts(), before, 'no worker to hand the task to: not started eagerly');
    } finally {
      await harness.startWorker();
    }
    assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
  });
});
