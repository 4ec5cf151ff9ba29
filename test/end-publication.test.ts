/**
 * A task whose webhook follows its end publishes the end (status search attribute and memo) with
 * the webhook's outcome, in the workflow's last task, unless the webhook takes longer than
 * `ASYNCQUEUE_LIST_STATUS_DELAY`; meanwhile every view read without the worker (lists, cancel,
 * `?wait`, bulk cancel) takes the end from the history. Against the real server; the histories
 * say what was published when.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { temporal } from '@temporalio/proto';
import { Receiver, respondJson, type Responder } from './support/receiver.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';
import { terminateRunning } from './support/cleanup.js';
import { eventually } from './support/eventually.js';
import { TASK_STATUS_SEARCH_ATTRIBUTE, WEBHOOK_ACTIVITY, workflowIdForTask } from '../workflows/task-contract.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

let quick: Harness;
let held: Harness;
let atOnce: Harness;
let receiver: Receiver;

before(async () => {
  receiver = await Receiver.start();
  quick = await startHarness();
  // A delay no test outlasts: the end stays unpublished while the webhook is held.
  held = await startHarness({ env: { ASYNCQUEUE_LIST_STATUS_DELAY: '60' } });
  atOnce = await startHarness({ env: { ASYNCQUEUE_LIST_STATUS_DELAY: '0' } });
});

after(async () => {
  for (const harness of [quick, held, atOnce]) {
    await terminateRunning(harness);
    await harness.close();
  }
  await receiver.close();
  await stopOwnServer();
});

async function historyOf(harness: Harness, id: string): Promise<HistoryEvent[]> {
  return (await harness.client.workflow.getHandle(workflowIdForTask(id)).fetchHistory()).events ?? [];
}

const memoUpdates = (events: HistoryEvent[]): number[] =>
  events.flatMap((e, i) => (e.workflowPropertiesModifiedEventAttributes ? [i] : []));
const statusUpserts = (events: HistoryEvent[]): number[] =>
  events.flatMap((e, i) => (e.upsertWorkflowSearchAttributesEventAttributes ? [i] : []));
const lastWorkflowTaskCompleted = (events: HistoryEvent[]): number =>
  Math.max(...events.flatMap((e, i) => (e.workflowTaskCompletedEventAttributes ? [i] : [])));
const webhookScheduled = (events: HistoryEvent[]): number =>
  events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === WEBHOOK_ACTIVITY);
const publishEndSignals = (events: HistoryEvent[]): number =>
  events.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'publishEnd').length;

/** Waits until `GET /v1/tasks?status=succeeded` (the indexed status) lists the task; its entry. */
function listedAsSucceeded(id: string, what: string): Promise<any> {
  return eventually(
    async () => {
      const page = await quick.api('GET', '/v1/tasks?status=succeeded&limit=100');
      return page.body.tasks.find((task: any) => task.id === id);
    },
    { what: `the task listed as succeeded ${what}` },
  );
}

/** A receiver that holds each request until the test lets it go. */
function heldReceiver(): { responder: Responder; release: () => void } {
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    release,
    responder: async (received, response) => {
      await released;
      if (!response.destroyed) await respondJson(200, {})(received, response, undefined as never);
    },
  };
}

/** A task whose callback answers `result` at once and whose webhook is held: once the webhook is out. */
async function taskWithHeldWebhook(
  harness: Harness,
  name: string,
  result: unknown,
): Promise<{ id: string; release: () => void }> {
  const hook = heldReceiver();
  receiver.script(`/${name}-callee`, respondJson(200, result));
  receiver.script(`/${name}-hook`, hook.responder);
  const id = await harness.createTask({
    callbackUrl: receiver.url(`/${name}-callee`),
    webhookUrl: receiver.url(`/${name}-hook`),
  });
  await receiver.waitFor(`/${name}-hook`, 1);
  return { id, release: hook.release };
}

describe('publishing a task’s end', () => {
  it('a webhook delivered at once: the end is published once, with the webhook’s outcome, in the last workflow task', async () => {
    receiver.script('/quick-callee', respondJson(200, { answer: 1 }));
    receiver.script('/quick-hook', respondJson(200, {}));
    const id = await quick.createTask({ callbackUrl: receiver.url('/quick-callee'), webhookUrl: receiver.url('/quick-hook') });
    const view = await quick.waitForEnd(id);
    assert.equal(view.status, 'succeeded');
    assert.equal(view.webhook.status, 'delivered');
    const events = await historyOf(quick, id);
    const last = lastWorkflowTaskCompleted(events);
    assert.deepEqual(memoUpdates(events).length, 1, 'one memo update');
    assert.deepEqual(statusUpserts(events).length, 1, 'one status upsert');
    assert.ok(memoUpdates(events)[0]! > last && statusUpserts(events)[0]! > last, 'both in the workflow’s last task');
    assert.equal(publishEndSignals(events), 0);
    // The close carried both into visibility: the list filters on it and shows the final view.
    const listed = await listedAsSucceeded(id, 'once it has ended');
    assert.equal(listed.webhook.status, 'delivered');
  });

  it('with the delay 0, the end is published at once, as before the delay existed (two memo updates)', async () => {
    receiver.script('/now-callee', respondJson(200, { answer: 2 }));
    receiver.script('/now-hook', respondJson(200, {}));
    const id = await atOnce.createTask({ callbackUrl: receiver.url('/now-callee'), webhookUrl: receiver.url('/now-hook') });
    await atOnce.waitForEnd(id);
    const events = await historyOf(atOnce, id);
    assert.equal(memoUpdates(events).length, 2);
    assert.ok(statusUpserts(events)[0]! < webhookScheduled(events), 'the status upsert comes before the webhook');
  });

  it('a webhook that fails its first attempt: its worker has the end published while the webhook is retried', async () => {
    const retry = heldReceiver();
    receiver.script('/retry-callee', respondJson(200, { answer: 3 }));
    receiver.script('/retry-hook', respondJson(503, {}), retry.responder);
    const id = await quick.createTask({ callbackUrl: receiver.url('/retry-callee'), webhookUrl: receiver.url('/retry-hook') });
    // The second attempt is held until the list has the end.
    await receiver.waitFor('/retry-hook', 2);
    try {
      await listedAsSucceeded(id, 'while its webhook is retried');
    } finally {
      retry.release();
    }
    const view = await quick.waitForEnd(id);
    assert.equal(view.webhook.status, 'delivered');
    assert.equal(view.webhook.attempts, 2);
    const events = await historyOf(quick, id);
    assert.ok(publishEndSignals(events) >= 1, 'the worker asked for the end');
  });

  it('a webhook held past the delay: the list shows the end while the webhook is still out', async () => {
    const { id, release } = await taskWithHeldWebhook(quick, 'slow', { answer: 4 });
    const listed = await listedAsSucceeded(id, 'before its webhook is answered');
    assert.equal(listed.webhook.status, 'pending');
    release();
    await quick.waitForEnd(id);
    assert.ok(publishEndSignals(await historyOf(quick, id)) >= 1);
  });

  it('while the end is unpublished, views read without the worker take it from the history: list, cancel, ?wait, bulk cancel', async () => {
    const { id, release } = await taskWithHeldWebhook(held, 'window', { answer: 5 });
    try {
      // Unpublished: visibility still has the callback phase's status, and the memo says pending.
      const description = await held.client.workflow.getHandle(workflowIdForTask(id)).describe();
      assert.equal(description.typedSearchAttributes.get(TASK_STATUS_SEARCH_ATTRIBUTE), 'running');
      assert.equal(publishEndSignals(await historyOf(held, id)), 0);

      const page = await held.api('GET', '/v1/tasks?limit=100');
      const listed = page.body.tasks.find((task: any) => task.id === id);
      assert.equal(listed?.status, 'succeeded', JSON.stringify(listed));
      assert.equal(listed.attempts, 1);
      assert.equal(listed.result, undefined, 'a list carries no results');
      assert.equal(listed.webhook.status, 'pending');

      const cancel = await held.api('POST', `/v1/tasks/${id}/cancel`);
      assert.equal(cancel.status, 409, JSON.stringify(cancel.body));

      // Answered at once (the webhook's scheduling is the end), not when the 30 s are up.
      const waitStarted = Date.now();
      const waited = await held.api('GET', `/v1/tasks/${id}?wait=30`);
      assert.ok(Date.now() - waitStarted < 20_000, `answered after ${Date.now() - waitStarted} ms`);
      assert.equal(waited.status, 200);
      assert.equal(waited.body.status, 'succeeded');
      assert.deepEqual(waited.body.result, { answer: 5 });

      const bulk = await held.api('POST', '/v1/tasks/bulk', { action: 'cancel', ids: [id] });
      assert.equal(bulk.status, 202);
      const operation = await eventually(
        async () => {
          const view = await held.api('GET', `/v1/operations/${bulk.body.id}`);
          return view.body.state === 'running' ? undefined : view.body;
        },
        { timeoutMs: 60_000, what: 'the bulk cancel to end' },
      );
      assert.deepEqual([operation.matched, operation.succeeded, operation.skipped], [1, 0, 1], JSON.stringify(operation));
    } finally {
      release();
    }
    const view = await held.waitForEnd(id);
    assert.equal(view.status, 'succeeded');
    assert.equal(view.webhook.status, 'delivered');
    const events = await historyOf(held, id);
    assert.equal(memoUpdates(events).length, 1);
    assert.equal(publishEndSignals(events), 0);
  });

  it('a workflow terminated before its end was published still reads as the end it had, in GET and in the list', async () => {
    const { id, release } = await taskWithHeldWebhook(held, 'stopped', { answer: 6 });
    await held.client.workflow.getHandle(workflowIdForTask(id)).terminate('an operator, in the Temporal UI');
    release();
    const view = (await held.api('GET', `/v1/tasks/${id}`)).body;
    assert.equal(view.status, 'succeeded', JSON.stringify(view));
    assert.deepEqual(view.result, { answer: 6 });
    assert.equal(view.webhook.status, 'failed');
    // The list's entry says the same (without the result, as every list entry).
    const listed = await eventually(
      async () => {
        const page = await held.api('GET', '/v1/tasks?limit=100');
        const entry = page.body.tasks.find((task: any) => task.id === id);
        return entry?.webhook?.status === 'failed' ? entry : undefined;
      },
      { timeoutMs: 30_000, what: 'the list to show the terminated task closed' },
    );
    assert.equal(listed.status, 'succeeded', JSON.stringify(listed));
    assert.equal(listed.attempts, 1);
    assert.equal(listed.result, undefined);
  });
});
