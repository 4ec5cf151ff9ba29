/**
 * What operators do from Temporal itself (the UI's Cancel and Terminate buttons, `temporal
 * workflow cancel|terminate`, a workflow timeout) reads the same through the API as what the API
 * does: GET and the list agree, status filters hold, and a cancel delivers its webhook.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Receiver, respondJson } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

let harness: Harness;
let receiver: Receiver;
const foreign: string[] = [];

before(async () => {
  harness = await startHarness();
  receiver = await Receiver.start();
});

after(async () => {
  for (const workflowId of foreign)
    await harness.client.workflow
      .getHandle(workflowId)
      .terminate('test over')
      .catch(() => undefined);
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

const handle = (id: string) => harness.client.workflow.getHandle(`task-${id}`);

/** Every page of `GET /v1/tasks?status=…`, until the task shows up or visibility has settled. */
async function listed(status: string | undefined, id: string): Promise<any | undefined> {
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({
      limit: '100',
      ...(status !== undefined ? { status } : {}),
      ...(cursor ? { cursor } : {}),
    });
    const page = await harness.api('GET', `/v1/tasks?${query}`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    const found = (page.body.tasks as any[]).find((task) => task.id === id);
    if (found !== undefined) return found;
    cursor = page.body.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return undefined;
}

/** Waits until visibility lists the task under `status` (and returns its listed view). */
async function listedAs(status: string, id: string): Promise<any> {
  return eventually(async () => listed(status, id), { what: `task ${id} listed as ${status}` });
}

describe('cancel through Temporal', () => {
  it('ends an in-flight task cancelled, aborts the call and delivers task.cancelled, as the API cancel does', async () => {
    let aborted = false;
    receiver.always('/held', (_received, response) => {
      response.once('close', () => (aborted = !response.writableFinished));
    });
    const id = await harness.createTask({
      callbackUrl: receiver.url('/held'),
      webhookUrl: receiver.url('/held-hook'),
      timeout: 60,
    });
    await receiver.waitFor('/held', 1);
    await harness.waitForTask(id, (task) => task.status === 'running', 'running');
    await handle(id).cancel();

    const task = await harness.waitForEnd(id);
    assert.equal(task.status, 'cancelled');
    assert.equal(task.error.code, 'cancelled');
    assert.equal(task.attempts, 1);
    assert.equal(task.webhook.status, 'delivered');
    const [hook] = await receiver.waitFor('/held-hook', 1);
    assert.equal(JSON.parse(hook!.body).type, 'task.cancelled');
    assert.ok(aborted, 'the held call was cut off');
    assert.equal(receiver.to('/held').length, 1, 'no further attempt');
    // The operator asked Temporal to cancel: the workflow ends Canceled there.
    assert.equal((await handle(id).describe()).status.name, 'CANCELLED');
    const inList = await listedAs('cancelled', id);
    assert.equal(inList.status, 'cancelled');
    assert.equal(inList.webhook.status, 'delivered');
  });

  it('cancels a task waiting for its delay without calling the callback', async () => {
    const id = await harness.createTask({
      callbackUrl: receiver.url('/never'),
      webhookUrl: receiver.url('/delay-hook'),
      delay: 600,
    });
    await handle(id).cancel();
    const task = await harness.waitForEnd(id);
    assert.equal(task.status, 'cancelled');
    assert.equal(task.attempts, 0);
    const [hook] = await receiver.waitFor('/delay-hook', 1);
    assert.equal(JSON.parse(hook!.body).type, 'task.cancelled');
    assert.equal(receiver.to('/never').length, 0);
    assert.equal((await listedAs('cancelled', id)).status, 'cancelled');
  });
});

describe('terminate and timeout through Temporal', () => {
  it('reads a terminated task as failed (terminated) in GET and in the list, and drops it from in-progress filters', async () => {
    receiver.always('/terminated', () => undefined);
    const id = await harness.createTask({
      callbackUrl: receiver.url('/terminated'),
      webhookUrl: receiver.url('/terminated-hook'),
      timeout: 60,
    });
    await receiver.waitFor('/terminated', 1);
    await listedAs('running', id);
    await handle(id).terminate('operator pressed Terminate');

    const task = await harness.task(id);
    assert.equal(task.status, 'failed');
    assert.equal(task.error.code, 'terminated');
    assert.equal(task.webhook.status, 'failed', 'the workflow that would deliver it is gone');
    const inList = await listedAs('failed', id);
    assert.deepEqual(inList, task);
    for (const status of ['pending', 'running', 'retrying', 'scheduled']) {
      assert.equal(await listed(status, id), undefined, `still listed as ${status}`);
    }
    assert.deepEqual(await listed(undefined, id), task);
  });

  it('keeps the outcome a task had reached when terminated while delivering its webhook', async () => {
    receiver.always('/done', respondJson(200, { done: true }));
    receiver.always('/down-hook', respondJson(503, {}));
    const id = await harness.createTask({ callbackUrl: receiver.url('/done'), webhookUrl: receiver.url('/down-hook') });
    // As an operator finds it: listed as succeeded, its webhook failing (the end is published on
    // the webhook's first failure; a task terminated before that reads right in GET, see
    // end-publication.test.ts, but its closed record keeps the callback phase's status).
    await listedAs('succeeded', id);
    await handle(id).terminate('give up on the webhook');
    const task = await harness.task(id);
    assert.equal(task.status, 'succeeded');
    assert.deepEqual(task.result, { done: true }, 'the result survives, read from the history');
    assert.equal(task.webhook.status, 'failed');
    // Lists never carry results; otherwise the list shows the same view.
    const { result: _result, ...withoutResult } = task;
    assert.deepEqual(await listedAs('succeeded', id), withoutResult);
  });

  it('reads a task whose workflow timed out as failed (timed_out), the same in GET and the list', async () => {
    // A workflow execution timeout, as a namespace default or an operator's tooling would set it.
    const id = randomUUID();
    const createdAt = new Date().toISOString();
    const memo = {
      id,
      status: 'scheduled',
      callbackUrl: receiver.url('/late'),
      webhookUrl: null,
      retries: 0,
      timeout: 30,
      delay: 600,
      createdAt,
      updatedAt: createdAt,
      attempts: 0,
    };
    await harness.client.workflow.start('taskWorkflow', {
      taskQueue: harness.config.taskQueue,
      workflowId: `task-${id}`,
      workflowExecutionTimeout: '1s',
      args: [
        {
          id,
          callbackUrl: memo.callbackUrl,
          payload: {},
          webhookUrl: null,
          retries: 0,
          timeoutSeconds: 30,
          delaySeconds: 600,
          headers: {},
          createdAt,
          policy: harness.config.policy,
        },
      ],
      memo: { task: memo },
      typedSearchAttributes: [{ key: { name: 'TaskStatus', type: 'KEYWORD' }, value: 'scheduled' }] as never,
    });
    await eventually(async () => ((await handle(id).describe()).status.name === 'TIMED_OUT' ? true : undefined), {
      what: 'the workflow to time out',
    });
    const task = await harness.task(id);
    assert.equal(task.status, 'failed');
    assert.equal(task.error.code, 'timed_out');
    assert.deepEqual(await listedAs('failed', id), task);
    assert.equal(await listed('scheduled', id), undefined);
  });
});

describe("another program's task-* workflow in the namespace", () => {
  it('is not a task: 404 on read and cancel, and the list skips it', async () => {
    const id = `foreign-${randomUUID()}`;
    const workflowId = `task-${id}`;
    foreign.push(workflowId);
    // No worker polls this queue: the workflow just runs, as another app's would.
    await harness.client.workflow.start('someoneElsesWorkflow', { taskQueue: `elsewhere-${randomUUID()}`, workflowId, args: [] });
    const read = await harness.api('GET', `/v1/tasks/${id}`);
    assert.equal(read.status, 404, JSON.stringify(read.body));
    assert.equal(read.body.error.code, 'task_not_found');
    assert.equal((await harness.api('POST', `/v1/tasks/${id}/cancel`, {})).status, 404);
    // A task-* workflow of our own type but without the memo (started by hand) is skipped too.
    const bare = `bare-${randomUUID()}`;
    foreign.push(`task-${bare}`);
    await harness.client.workflow.start('taskWorkflow', {
      taskQueue: `elsewhere-${randomUUID()}`,
      workflowId: `task-${bare}`,
      args: [] as never,
    });
    assert.equal((await harness.api('GET', `/v1/tasks/${bare}`)).status, 404);
    // Listed alongside real tasks, neither appears, and nothing fails.
    const real = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 600 });
    await listedAs('scheduled', real);
    assert.equal(await listed(undefined, id), undefined);
    assert.equal(await listed(undefined, bare), undefined);
    await harness.api('POST', `/v1/tasks/${real}/cancel`, {});
  });
});
