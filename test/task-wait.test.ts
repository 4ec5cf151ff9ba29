/**
 * Waiting for the outcome (`?wait=N`) against the real server: POST answers 200 with the result
 * when the task ends in time, GET long-polls, every waiter of a task shares one long poll on
 * Temporal, and a client that hangs up leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AsyncQueue, WaitTimeoutError } from '../src/client/index.js';
import { Receiver, respondJson, type Responder } from './support/receiver.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';
import { terminateRunning } from './support/cleanup.js';
import { eventually } from './support/eventually.js';
import { TaskEndWatch } from '../src/api/tasks/task-end-watch.js';

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

/** Answers after `ms` (a callee that takes its time). */
const respondAfter =
  (ms: number, body: unknown): Responder =>
  async (_received, response) => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (!response.destroyed) await respondJson(200, body)(_received, response, undefined as never);
  };

/** A callee that holds the call until the test lets it go. */
function heldCallee(): { responder: Responder; release: (body: unknown) => void } {
  let release: (body: unknown) => void = () => undefined;
  const released = new Promise<unknown>((resolve) => (release = resolve));
  return {
    release,
    responder: async (received, response) => {
      const body = await released;
      if (!response.destroyed) await respondJson(200, body)(received, response, undefined as never);
    },
  };
}

const stats = () => harness.app.tasks.waitStats();

describe('POST /v1/tasks?wait=N', () => {
  it('answers 200 with the final view, result included, when a fast callee ends in time: one round trip', async () => {
    receiver.script('/fast', respondJson(200, { answer: 42 }));
    const started = Date.now();
    const response = await harness.api('POST', '/v1/tasks?wait=20', { callbackUrl: receiver.url('/fast') });
    assert.equal(response.status, 200, JSON.stringify(response.body));
    assert.equal(response.body.status, 'succeeded');
    assert.deepEqual(response.body.result, { answer: 42 });
    assert.equal(response.body.attempts, 1);
    assert.equal(response.headers.get('location'), `/v1/tasks/${response.body.id}`);
    assert.ok(Date.now() - started < 15_000);
  });

  it('answers the usual 202 when the task has not ended after N seconds', async () => {
    const held = heldCallee();
    receiver.script('/slow', held.responder);
    const started = Date.now();
    const response = await harness.api('POST', '/v1/tasks?wait=1', { callbackUrl: receiver.url('/slow') });
    const elapsed = Date.now() - started;
    held.release({ late: true });
    assert.equal(response.status, 202, JSON.stringify(response.body));
    assert.deepEqual(Object.keys(response.body).sort(), ['createdAt', 'id', 'status']);
    assert.ok(elapsed >= 1_000, `answered after ${elapsed} ms`);
    await harness.waitForEnd(response.body.id);
  });

  it('answers an idempotent repeat as before: 200 with the existing view, whatever wait says', async () => {
    const held = heldCallee();
    receiver.script('/repeat', held.responder);
    const body = { callbackUrl: receiver.url('/repeat') };
    const headers = { 'idempotency-key': `wait-repeat-${Date.now()}` };
    const first = await harness.api('POST', '/v1/tasks?wait=1', body, headers);
    assert.equal(first.status, 202);
    const started = Date.now();
    const repeat = await harness.api('POST', '/v1/tasks?wait=30', body, headers);
    assert.equal(repeat.status, 200);
    assert.equal(repeat.body.id, first.body.id);
    assert.ok(!['succeeded', 'failed', 'cancelled'].includes(repeat.body.status));
    assert.ok(Date.now() - started < 10_000, 'a repeat does not wait');
    held.release({});
    await harness.waitForEnd(first.body.id);
  });

  it('refuses a bad wait with a 400 naming it', async () => {
    for (const wait of ['61', '-1', 'abc', '1.5']) {
      const response = await harness.api('POST', `/v1/tasks?wait=${wait}`, { callbackUrl: receiver.url('/never') });
      assert.equal(response.status, 400, wait);
      assert.match(response.body.error.message, /^wait: /);
    }
  });
});

describe('GET /v1/tasks/{id}?wait=N', () => {
  it('returns as soon as the task ends, well before N, even while its webhook is still being retried', async () => {
    receiver.script('/ends-soon', respondAfter(1_500, { done: true }));
    // The workflow stays open delivering this webhook: the task has ended all the same.
    receiver.always('/webhook-down', respondJson(503, { down: true }));
    const id = await harness.createTask({ callbackUrl: receiver.url('/ends-soon'), webhookUrl: receiver.url('/webhook-down') });
    const started = Date.now();
    const response = await harness.api('GET', `/v1/tasks/${id}?wait=50`);
    const elapsed = Date.now() - started;
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'succeeded');
    assert.deepEqual(response.body.result, { done: true });
    assert.equal(response.body.webhook.status, 'pending');
    assert.ok(elapsed < 25_000, `answered after ${elapsed} ms`);
    await harness.client.workflow.getHandle(`task-${id}`).terminate('test done'); // stops the webhook retries
  });

  it('returns the current view after N seconds on a task still running', async () => {
    const held = heldCallee();
    receiver.script('/held', held.responder);
    const id = await harness.createTask({ callbackUrl: receiver.url('/held') });
    await receiver.waitFor('/held', 1);
    const started = Date.now();
    const response = await harness.api('GET', `/v1/tasks/${id}?wait=2`);
    const elapsed = Date.now() - started;
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'running');
    assert.ok(elapsed >= 2_000 && elapsed < 12_000, `answered after ${elapsed} ms`);
    held.release({ ok: true });
    await harness.waitForEnd(id);
  });

  it('returns at once for a task that has been cancelled or has failed', async () => {
    const delayed = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600 });
    assert.equal((await harness.api('POST', `/v1/tasks/${delayed}/cancel`)).status, 202);
    await harness.waitForEnd(delayed);
    receiver.script('/refuses', respondJson(400, { no: true }));
    const failed = await harness.createTask({ callbackUrl: receiver.url('/refuses'), retries: 0 });
    await harness.waitForEnd(failed);
    for (const [id, status] of [
      [delayed, 'cancelled'],
      [failed, 'failed'],
    ] as const) {
      const started = Date.now();
      const response = await harness.api('GET', `/v1/tasks/${id}?wait=60`);
      assert.equal(response.body.status, status);
      assert.ok(Date.now() - started < 5_000);
    }
  });

  it('wakes a waiter when the task is cancelled while it waits', async () => {
    const id = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600 });
    const waiting = harness.api('GET', `/v1/tasks/${id}?wait=50`);
    await eventually(async () => (stats().waiters >= 1 ? true : undefined), { what: 'the waiter to register' });
    const started = Date.now();
    assert.equal((await harness.api('POST', `/v1/tasks/${id}/cancel`)).status, 202);
    const response = await waiting;
    assert.equal(response.body.status, 'cancelled');
    assert.ok(Date.now() - started < 20_000);
  });

  it('shares one long poll among every client waiting for a task, and ends it with the last', async () => {
    const id = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600 });
    const controllers = Array.from({ length: 5 }, () => new AbortController());
    const requests = controllers.map((controller) =>
      fetch(`${harness.baseUrl}/v1/tasks/${id}?wait=50`, { signal: controller.signal }).catch((err: unknown) => err),
    );
    await eventually(async () => (stats().waiters === 5 ? true : undefined), { what: 'five waiters' });
    assert.equal(stats().polling, 1, 'one long poll for the five');
    const metrics = await (await fetch(`${harness.baseUrl}/metrics`)).text();
    assert.match(metrics, /^asyncqueue_wait_clients 5$/m);
    assert.match(metrics, /^asyncqueue_wait_polls 1$/m);
    for (const controller of controllers) controller.abort();
    await Promise.all(requests);
    // The clients hung up: nothing waits and no poll runs any more.
    await eventually(async () => (stats().waiters === 0 && stats().polling === 0 ? true : undefined), {
      what: 'the waiters and the poll to go',
    });
    assert.equal(stats().queued, 0);
  });

  it('refuses a bad wait with a 400 naming it, and 404s an unknown task', async () => {
    for (const wait of ['61', '-1', 'x']) {
      const response = await harness.api('GET', `/v1/tasks/some-id?wait=${wait}`);
      assert.equal(response.status, 400, wait);
      assert.match(response.body.error.message, /^wait: /);
    }
    assert.equal((await harness.api('GET', '/v1/tasks/no-such-task?wait=5')).status, 404);
  });
});

describe('the long-poll cap', () => {
  it('queues waited-for tasks beyond ASYNCQUEUE_MAX_WAIT_POLLS and polls them as polls free up', async () => {
    const watch = new TaskEndWatch(harness.client, { namespace: harness.config.temporalNamespace, maxPolls: 1 });
    try {
      const first = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600 });
      const second = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600 });
      const firstWait = watch.wait(first, 40_000);
      const secondWait = watch.wait(second, 40_000);
      assert.deepEqual(
        { ...watch.stats(), historyCalls: 0, failedCalls: {} },
        {
          polling: 1,
          queued: 1,
          waiters: 2,
          historyCalls: 0,
          failedCalls: {},
        },
      );
      await harness.api('POST', `/v1/tasks/${first}/cancel`);
      assert.equal(await firstWait, 'ended');
      await eventually(async () => (watch.stats().queued === 0 && watch.stats().polling === 1 ? true : undefined), {
        what: 'the queued task to get the poll',
      });
      await harness.api('POST', `/v1/tasks/${second}/cancel`);
      assert.equal(await secondWait, 'ended');
      assert.deepEqual(watch.stats().failedCalls, {});
    } finally {
      await watch.close();
    }
  });
});

describe('SDK aq.tasks.wait', () => {
  it('long-polls: one request while the task runs, not one a second', async () => {
    let requests = 0;
    const aq = new AsyncQueue({
      baseUrl: harness.baseUrl,
      fetch: (input, init) => {
        requests++;
        return fetch(input, init);
      },
    });
    receiver.script('/sdk', respondAfter(3_000, { sdk: true }));
    const { id } = await aq.tasks.create({ callbackUrl: receiver.url('/sdk') });
    requests = 0;
    const task = await aq.tasks.wait(id, { timeoutMs: 40_000 });
    assert.equal(task.status, 'succeeded');
    assert.deepEqual(task.result, { sdk: true });
    assert.equal(requests, 1);
  });

  it('keeps its timeout: WaitTimeoutError once timeoutMs has passed', async () => {
    const aq = new AsyncQueue({ baseUrl: harness.baseUrl });
    const id = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600 });
    const started = Date.now();
    await assert.rejects(aq.tasks.wait(id, { timeoutMs: 1_500 }), WaitTimeoutError);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1_500 && elapsed < 10_000, `gave up after ${elapsed} ms`);
  });
});
