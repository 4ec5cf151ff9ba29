/**
 * Bulk actions: a cancel by label touches exactly the matching tasks (and sends their
 * task.cancelled webhooks); a replay re-runs each task once, also when the API restarts while the
 * operation runs; an ids list; a filter without criterion is a 400.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { buildApp } from '../src/api/app.js';
import { AsyncQueue } from '../src/client/index.js';
import { tasksQuery } from '../src/api/tasks/list-query.js';
import { OPERATION_MEMO_KEY, workflowIdForOperation } from '../workflows/bulk-operation-contract.js';
import { bulkOperationWorkflow } from '../workflows/bulk-operation-workflow.js';
import { TASK_MEMO_KEY, TASK_WORKFLOW_TYPE, workflowIdForTask, type TaskInput } from '../workflows/task-contract.js';
import { initialMemo, taskSearchAttributes } from '../workflows/task-start.js';
import { runCli } from '../src/cli/main.js';
import { Receiver, respondJson } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { startHarness, stopOwnServer, temporalAddress, type Harness } from './support/harness.js';
import { terminateRunning, visibilityCaughtUp } from './support/cleanup.js';

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

async function getJson(baseUrl: string, path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${baseUrl}${path}`);
  return { status: response.status, body: await response.json() };
}

/** Polls the operation until it has ended; its view. */
async function operationEnded(id: string, baseUrl = harness.baseUrl): Promise<any> {
  return eventually(
    async () => {
      const { status, body } = await getJson(baseUrl, `/v1/operations/${id}`);
      assert.equal(status, 200, JSON.stringify(body));
      return body.state === 'running' ? undefined : body;
    },
    { timeoutMs: 60_000, what: `operation ${id} to end` },
  );
}

describe('bulk actions', () => {
  it('refuses a filter without criterion, both or neither of filter and ids, and an unknown operation', async () => {
    const empty = await harness.api('POST', '/v1/tasks/bulk', { action: 'cancel', filter: {} });
    assert.equal(empty.status, 400);
    assert.match(empty.body.error.message, /^filter: /);
    const neither = await harness.api('POST', '/v1/tasks/bulk', { action: 'cancel' });
    assert.equal(neither.status, 400);
    assert.match(neither.body.error.message, /^filter: /);
    const both = await harness.api('POST', '/v1/tasks/bulk', { action: 'cancel', filter: { label: 'x' }, ids: ['a'] });
    assert.equal(both.status, 400);
    const many = await harness.api('POST', '/v1/tasks/bulk', {
      action: 'cancel',
      ids: Array.from({ length: 1001 }, (_, i) => `t${i}`),
    });
    assert.equal(many.status, 400);
    assert.match(many.body.error.message, /^ids: /);
    const badLabel = await harness.api('POST', '/v1/tasks/bulk', { action: 'replay', filter: { label: 'no spaces' } });
    assert.equal(badLabel.status, 400);
    assert.match(badLabel.body.error.message, /^filter\.label/);
    const unknown = await harness.api('GET', `/v1/operations/${randomUUID()}`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'operation_not_found');
  });

  it('cancel by label touches exactly the matching tasks and sends their task.cancelled webhooks', async () => {
    const label = `bulk-cancel:${randomUUID().slice(0, 8)}`;
    const hook = `/cancel-hook-${randomUUID()}`;
    const matching = await Promise.all(
      [1, 2, 3].map(() =>
        harness.createTask({ callbackUrl: receiver.url('/never'), webhookUrl: receiver.url(hook), delay: 3600, labels: [label] }),
      ),
    );
    const otherLabel = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600, labels: [`${label}-not`] });
    const bothLabels = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600, labels: ['x', label] });
    await visibilityCaughtUp(harness);

    const response = await harness.api('POST', '/v1/tasks/bulk', { action: 'cancel', filter: { label } });
    assert.equal(response.status, 202, JSON.stringify(response.body));
    assert.equal(response.body.state, 'running');
    assert.equal(response.body.action, 'cancel');
    assert.equal(response.headers.get('location'), `/v1/operations/${response.body.id}`);

    const operation = await operationEnded(response.body.id);
    assert.equal(operation.state, 'completed', JSON.stringify(operation));
    assert.equal(operation.matched, 4);
    assert.equal(operation.succeeded, 4);
    assert.equal(operation.failed, 0);
    assert.deepEqual(operation.filter, { label });
    assert.ok(operation.endedAt !== null);

    for (const id of [...matching, bothLabels]) {
      const view = await harness.waitForEnd(id);
      assert.equal(view.status, 'cancelled');
      assert.equal(view.error.message, `cancelled by bulk operation ${operation.id}`);
    }
    assert.equal((await harness.task(otherLabel)).status, 'scheduled');
    const hooks = await receiver.waitFor(hook, 3);
    assert.deepEqual(
      hooks
        .map((request) => JSON.parse(request.body))
        .map((event) => [event.type, event.taskId])
        .sort(),
      matching.map((id) => ['task.cancelled', id]).sort(),
    );
    assert.equal(receiver.requests.filter((request) => request.path === '/never').length, 0);
  });

  it('cancel by ids: unknown ids fail alone, ended ones are skipped, a repeated id counts once', async () => {
    const running = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600 });
    const ended = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600 });
    assert.equal((await harness.api('POST', `/v1/tasks/${ended}/cancel`)).status, 202);
    await harness.waitForEnd(ended);
    const unknown = randomUUID();
    const response = await harness.api('POST', '/v1/tasks/bulk', { action: 'cancel', ids: [running, unknown, ended, running] });
    assert.equal(response.status, 202);
    const operation = await operationEnded(response.body.id);
    assert.equal(operation.ids, 3);
    assert.deepEqual(
      [operation.matched, operation.succeeded, operation.failed, operation.skipped],
      [3, 1, 1, 1],
      JSON.stringify(operation),
    );
    assert.deepEqual(operation.errors, [{ taskId: unknown, code: 'task_not_found', message: `task ${unknown} not found` }]);
    assert.equal((await harness.waitForEnd(running)).status, 'cancelled');
  });

  it('with Idempotency-Key, a repeat answers the operation the first started (200), so a retried replay replays once; another request is a 409', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const id = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600 });
      assert.equal((await harness.api('POST', `/v1/tasks/${id}/cancel`)).status, 202);
      await harness.waitForEnd(id);
      ids.push(id);
    }
    const key = { 'idempotency-key': `bulk-${randomUUID()}` };
    const body = { action: 'replay', ids };
    const first = await harness.api('POST', '/v1/tasks/bulk', body, key);
    assert.equal(first.status, 202);
    const repeat = await harness.api('POST', '/v1/tasks/bulk', body, key);
    assert.equal(repeat.status, 200);
    assert.equal(repeat.body.id, first.body.id);
    assert.equal(repeat.headers.get('location'), `/v1/operations/${first.body.id}`);
    const operation = await operationEnded(first.body.id);
    assert.deepEqual([operation.matched, operation.succeeded], [2, 2], JSON.stringify(operation));
    const misuse = await harness.api('POST', '/v1/tasks/bulk', { action: 'cancel', ids }, key);
    assert.equal(misuse.status, 409);
    assert.equal(misuse.body.error.code, 'idempotency_key_reused');
    // The same key names a task of its own space: a create with it is no conflict.
    assert.equal((await harness.api('POST', '/v1/tasks', { callbackUrl: receiver.url('/never'), delay: 3600 }, key)).status, 202);

    const aq = new AsyncQueue({ baseUrl: harness.baseUrl });
    const sdkKey = `sdk-bulk-${randomUUID()}`;
    const once = await aq.tasks.bulk({ action: 'replay', ids }, { idempotencyKey: sdkKey });
    const again = await aq.tasks.bulk({ action: 'replay', ids }, { idempotencyKey: sdkKey });
    assert.equal(again.id, once.id);
    const lines: string[] = [];
    const out = { write: (text: string) => lines.push(text), error: (text: string) => lines.push(text) };
    const cliArgs = [
      'tasks',
      'bulk',
      '--action',
      'replay',
      '--id',
      ids[0]!,
      '--id',
      ids[1]!,
      '--idempotency-key',
      sdkKey,
      '--json',
    ];
    assert.equal(await runCli(cliArgs, { ASYNCQUEUE_URL: harness.baseUrl }, out), 0);
    assert.equal(JSON.parse(lines.pop()!).id, once.id);
  });

  it('the SDK and the CLI: aq.tasks.bulk, aq.operations.get, aq.tasks.replay, tasks list --label', async () => {
    const aq = new AsyncQueue({ baseUrl: harness.baseUrl });
    const label = `sdk:${randomUUID().slice(0, 8)}`;
    const { id } = await aq.tasks.create({ callbackUrl: receiver.url('/never'), delay: 3600, labels: [label] });
    const started = await aq.tasks.bulk({ action: 'cancel', ids: [id] });
    assert.equal(started.state, 'running');
    const operation = await eventually(async () => {
      const read = await aq.operations.get(started.id);
      return read.state === 'running' ? undefined : read;
    });
    assert.deepEqual([operation.state, operation.succeeded], ['completed', 1]);
    await harness.waitForEnd(id);

    const lines: string[] = [];
    const out = { write: (text: string) => lines.push(text), error: (text: string) => lines.push(text) };
    const env = { ASYNCQUEUE_URL: harness.baseUrl };
    assert.equal(await runCli(['operations', 'get', started.id, '--json'], env, out), 0);
    assert.equal(JSON.parse(lines.pop()!).succeeded, 1);

    const replayed = await aq.tasks.replay(id, { delay: 3600 });
    assert.equal(replayed.replayOf, id);
    assert.equal(await runCli(['tasks', 'replay', id, '--delay', '3600', '--json'], env, out), 0);
    assert.equal(JSON.parse(lines.pop()!).replayOf, id);
    const listed = await eventually(async () => {
      const page = await aq.tasks.list({ label: [label], status: 'scheduled' });
      return page.tasks.length >= 2 ? page.tasks : undefined;
    });
    assert.ok(listed.every((task) => task.replayOf === id));
    assert.equal(await runCli(['tasks', 'bulk', '--action', 'cancel', '--label', label, '--json'], env, out), 0);
    const second = JSON.parse(lines.pop()!);
    const ended = await eventually(async () => {
      const read = await aq.operations.get(second.id);
      return read.state === 'running' ? undefined : read;
    });
    assert.equal(ended.succeeded, 2, JSON.stringify(ended));
  });

  it('continues as new, carrying its progress, and pages through tasks that close as it cancels them', async () => {
    const label = `bulk-can:${randomUUID().slice(0, 8)}`;
    const ids = await Promise.all(
      [1, 2, 3].map(() => harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600, labels: [label] })),
    );
    await visibilityCaughtUp(harness);
    const operationId = randomUUID();
    const createdAt = new Date().toISOString();
    // Started directly, with the test-only knobs: one task per page, one page per run.
    const handle = await harness.client.workflow.start(bulkOperationWorkflow, {
      taskQueue: harness.config.taskQueue,
      workflowId: workflowIdForOperation(operationId),
      args: [
        {
          id: operationId,
          action: 'cancel',
          createdAt,
          policy: harness.config.policy,
          filter: { label },
          query: `${tasksQuery({ labels: [label], createdBefore: createdAt })} AND ExecutionStatus = 'Running'`,
          pageSize: 1,
          pagesPerRun: 1,
        },
      ],
      memo: {
        [OPERATION_MEMO_KEY]: {
          id: operationId,
          action: 'cancel',
          state: 'running',
          createdAt,
          endedAt: null,
          matched: 0,
          succeeded: 0,
          failed: 0,
          skipped: 0,
          errors: [],
        },
      },
    });
    const operation = await operationEnded(operationId);
    assert.deepEqual([operation.state, operation.matched, operation.succeeded], ['completed', 3, 3], JSON.stringify(operation));
    const description = await harness.client.workflow.getHandle(workflowIdForOperation(operationId)).describe();
    assert.notEqual(description.runId, handle.firstExecutionRunId, 'it continued as new');
    for (const id of ids) assert.equal((await harness.waitForEnd(id)).status, 'cancelled');
  });

  it('cancel by flowControlKey, a key with a quote included (FlowControlKey set at start from the input)', async () => {
    const key = `tenant's:${randomUUID().slice(0, 8)}`;
    // Flow control is another feature's: a task whose input carries flowControl.key, started as the API starts tasks.
    const input: TaskInput = {
      id: randomUUID(),
      callbackUrl: receiver.url('/never'),
      payload: {},
      webhookUrl: null,
      retries: 0,
      timeoutSeconds: 5,
      delaySeconds: 3600,
      headers: {},
      createdAt: new Date().toISOString(),
      policy: harness.config.policy,
      ...({ flowControl: { key, parallelism: 1 } } as object),
    };
    await harness.client.workflow.start(TASK_WORKFLOW_TYPE, {
      taskQueue: harness.config.taskQueue,
      workflowId: workflowIdForTask(input.id),
      args: [input],
      memo: { [TASK_MEMO_KEY]: initialMemo(input) },
      typedSearchAttributes: taskSearchAttributes(input),
    });
    const other = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 3600 });
    const refused = await harness.api('POST', '/v1/tasks/bulk', { action: 'cancel', filter: { flowControlKey: 'a"b' } });
    assert.equal(refused.status, 400);
    assert.match(refused.body.error.message, /^filter\.flowControlKey: /);
    await visibilityCaughtUp(harness);
    const response = await harness.api('POST', '/v1/tasks/bulk', { action: 'cancel', filter: { flowControlKey: key } });
    assert.equal(response.status, 202, JSON.stringify(response.body));
    const operation = await operationEnded(response.body.id);
    assert.deepEqual([operation.state, operation.matched, operation.succeeded], ['completed', 1, 1], JSON.stringify(operation));
    assert.equal((await harness.waitForEnd(input.id)).status, 'cancelled');
    assert.equal((await harness.task(other)).status, 'scheduled');
  });

  it('a page handled twice (as after a worker crash) replays each task once: replay ids derive from operation and task', async () => {
    const path = `/twice-${randomUUID()}`;
    receiver.script(path, respondJson(500, {}));
    receiver.always(path, respondJson(200, { fixed: true }));
    const original = await harness.createTask({ callbackUrl: receiver.url(path), retries: 0 });
    assert.equal((await harness.waitForEnd(original)).status, 'failed');
    const operationId = randomUUID();
    const createdAt = new Date().toISOString();
    // The same operation's page run by two workflow executions: the second is what a retried activity does.
    for (const run of ['first', 'again']) {
      const result = await harness.client.workflow.execute(bulkOperationWorkflow, {
        taskQueue: harness.config.taskQueue,
        workflowId: `${workflowIdForOperation(operationId)}-${run}`,
        args: [{ id: operationId, action: 'replay', createdAt, policy: harness.config.policy, ids: [original] }],
      });
      assert.deepEqual([result.state, result.matched, result.succeeded], ['completed', 1, 1], JSON.stringify(result));
    }
    await receiver.waitFor(path, 2);
    await visibilityCaughtUp(harness);
    const replays = await harness.client.workflow.count(
      `WorkflowId STARTS_WITH 'task-' AND TaskQueue = '${harness.config.taskQueue}' AND StartTime > '${createdAt}'`,
    );
    assert.equal(replays.count, 1);
    assert.equal(receiver.requests.filter((request) => request.path === path).length, 2);
  });

  // Last: it closes the harness's app.
  it('replay re-runs each matching task once, also when the API restarts while the operation runs', async () => {
    const label = `bulk-replay:${randomUUID().slice(0, 8)}`;
    const paths = [1, 2, 3].map((n) => `/replay-${n}-${randomUUID()}`);
    for (const path of paths) {
      receiver.script(path, respondJson(503, { error: 'bad deploy' }));
      receiver.always(path, respondJson(200, { fixed: true }));
    }
    const originals = await Promise.all(
      paths.map((path) => harness.createTask({ callbackUrl: receiver.url(path), retries: 0, labels: [label] })),
    );
    for (const id of originals) assert.equal((await harness.waitForEnd(id)).status, 'failed');
    await visibilityCaughtUp(harness);

    // No worker: the operation is accepted and waits; the API that accepted it goes away.
    await harness.stopWorker();
    const response = await harness.api('POST', '/v1/tasks/bulk', { action: 'replay', filter: { label, status: 'failed' } });
    assert.equal(response.status, 202, JSON.stringify(response.body));
    const operationId = response.body.id as string;
    await harness.app.close();
    const app = await buildApp({ config: harness.config, target: { embeddedAddress: await temporalAddress() }, logger: false });
    try {
      const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
      const waiting = await getJson(baseUrl, `/v1/operations/${operationId}`);
      assert.equal(waiting.status, 200);
      assert.equal(waiting.body.state, 'running');
      await harness.startWorker();

      const operation = await operationEnded(operationId, baseUrl);
      assert.equal(operation.state, 'completed', JSON.stringify(operation));
      assert.deepEqual([operation.matched, operation.succeeded, operation.failed], [3, 3, 0]);

      // Each path: the original's attempt, then exactly one replay's.
      for (const path of paths) await receiver.waitFor(path, 2);
      const replays = await eventually(
        async () => {
          const { body } = await getJson(baseUrl, `/v1/tasks?label=${encodeURIComponent(label)}&status=succeeded&limit=100`);
          return body.tasks.length >= 3 ? body.tasks : undefined;
        },
        { what: 'the replays to be listed' },
      );
      assert.deepEqual(replays.map((task: { replayOf: string }) => task.replayOf).sort(), [...originals].sort());
      for (const id of originals) assert.equal((await getJson(baseUrl, `/v1/tasks/${id}`)).body.status, 'failed');
      // Nothing replayed a replay, or a task twice, once everything is listed.
      await visibilityCaughtUp(harness);
      for (const path of paths) assert.equal(receiver.requests.filter((request) => request.path === path).length, 2);
    } finally {
      await app.close();
    }
  });
});
