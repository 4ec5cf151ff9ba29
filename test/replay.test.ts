/**
 * Replay: a new task with the ended original's fields and `replayOf`; the original untouched; 409
 * while it runs, 404 unknown; Idempotency-Key; readable from history with no worker running.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { workflowIdForTask } from '../workflows/task-contract.js';
import { Receiver, respondJson } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';
import { terminateRunning } from './support/cleanup.js';

let harness: Harness;
let receiver: Receiver;

before(async () => {
  harness = await startHarness();
  receiver = await Receiver.start();
});

after(async () => {
  await terminateRunning(harness);
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

describe('replay', () => {
  it('starts a new task with the original fields and replayOf, and leaves the original untouched', async () => {
    const path = `/report-${randomUUID()}`;
    receiver.script(path, respondJson(500, { error: 'bad deploy' }));
    receiver.always(path, respondJson(200, { done: true }));
    const label = `replay:${randomUUID().slice(0, 8)}`;
    const original = await harness.createTask({
      callbackUrl: receiver.url(path),
      webhookUrl: receiver.url(`${path}-hook`),
      payload: { report: 42 },
      headers: { 'x-tenant': 'acme' },
      labels: [label, 'report'],
      retries: 0,
      timeout: 7,
    });
    const failed = await harness.waitForEnd(original);
    assert.equal(failed.status, 'failed');
    const handle = harness.client.workflow.getHandle(workflowIdForTask(original));
    const historyBefore = (await handle.describe()).historyLength;

    const response = await harness.api('POST', `/v1/tasks/${original}/replay`, { retries: 2 });
    assert.equal(response.status, 202, JSON.stringify(response.body));
    const replay = response.body.id as string;
    assert.notEqual(replay, original);
    assert.equal(response.body.replayOf, original);
    assert.equal(response.headers.get('location'), `/v1/tasks/${replay}`);

    const view = await harness.waitForEnd(replay);
    assert.equal(view.status, 'succeeded');
    assert.deepEqual(view.result, { done: true });
    assert.equal(view.replayOf, original);
    assert.deepEqual(view.labels, [label, 'report']);
    assert.equal(view.callbackUrl, receiver.url(path));
    assert.equal(view.webhookUrl, receiver.url(`${path}-hook`));
    assert.equal(view.retries, 2, 'the override');
    assert.equal(view.timeout, 7, "the original's");
    assert.equal(view.delay, 0);

    const calls = receiver.requests.filter((request) => request.path === path);
    assert.equal(calls.length, 2);
    const second = calls[1]!;
    assert.equal(second.headers['asyncqueue-task-id'], replay);
    assert.equal(second.headers['x-tenant'], 'acme');
    assert.deepEqual(JSON.parse(second.body), { report: 42 });
    const hooks = await receiver.waitFor(`${path}-hook`, 2);
    assert.equal(JSON.parse(hooks[1]!.body).taskId, replay);

    // The original: the same view, and not one event added to its history.
    const after = await harness.task(original);
    assert.deepEqual(after, failed);
    assert.equal((await handle.describe()).historyLength, historyBefore);
    assert.equal(after.replayOf, undefined);
  });

  it('is a 409 while the original has not ended, and a 404 for an unknown task', async () => {
    const running = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600 });
    const response = await harness.api('POST', `/v1/tasks/${running}/replay`);
    assert.equal(response.status, 409);
    assert.equal(response.body.error.code, 'task_not_ended');
    const unknown = await harness.api('POST', `/v1/tasks/${randomUUID()}/replay`);
    assert.equal(unknown.status, 404);
    const bad = await harness.api('POST', `/v1/tasks/${running}/replay`, { retries: 101 });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /^retries: /);
  });

  it('honours Idempotency-Key, and reads the original from history with no worker running', async () => {
    const path = `/cancelled-${randomUUID()}`;
    const original = await harness.createTask({ callbackUrl: receiver.url(path), delay: 3600, labels: ['idem'] });
    assert.equal((await harness.api('POST', `/v1/tasks/${original}/cancel`)).status, 202);
    await harness.waitForEnd(original);

    await harness.stopWorker();
    try {
      const key = { 'idempotency-key': `replay-${randomUUID()}` };
      const first = await harness.api('POST', `/v1/tasks/${original}/replay`, { delay: 3600 }, key);
      assert.equal(first.status, 202, JSON.stringify(first.body));
      const repeat = await harness.api('POST', `/v1/tasks/${original}/replay`, { delay: 3600 }, key);
      assert.equal(repeat.status, 200);
      assert.equal(repeat.body.id, first.body.id);
      assert.equal(repeat.body.replayOf, original);
      assert.deepEqual(repeat.body.labels, ['idem']);
      assert.equal(repeat.body.status, 'scheduled');
      const other = await harness.api('POST', `/v1/tasks/${original}/replay`, { delay: 60 }, key);
      assert.equal(other.status, 409);
      assert.equal(other.body.error.code, 'idempotency_key_reused');
    } finally {
      await harness.startWorker();
    }
  });

  it('a failures page (?status=failed) shows each task its final error code and when it failed', async () => {
    const label = `dlq:${randomUUID().slice(0, 8)}`;
    const path = `/refuses-${randomUUID()}`;
    receiver.always(path, respondJson(422, { error: 'unprocessable' }));
    const id = await harness.createTask({ callbackUrl: receiver.url(path), labels: [label] });
    const ended = await harness.waitForEnd(id);
    const page = await eventually(
      async () => {
        const response = await harness.api('GET', `/v1/tasks?status=failed&label=${encodeURIComponent(label)}`);
        return response.body.tasks.length > 0 ? response.body : undefined;
      },
      { what: 'the failed task to be listed' },
    );
    const [listed] = page.tasks;
    assert.equal(listed.id, id);
    assert.equal(listed.error.code, 'callback_http_status');
    assert.equal(listed.error.statusCode, 422);
    assert.equal(listed.endedAt, ended.endedAt);
    assert.ok(Date.parse(listed.endedAt) >= Date.parse(listed.createdAt));
    const running = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600 });
    assert.equal((await harness.task(running)).endedAt, undefined);
  });
});
