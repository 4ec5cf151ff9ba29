/**
 * `method` on create (CONTRACT v2, "More create fields"): the callback goes out with the method
 * asked for, GET and DELETE without a body or Content-Type but signed over the empty body, the
 * webhook stays POST, and a payload that a bodiless method would drop is a 400 naming `payload`.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import {
  TASK_MEMO_KEY,
  TASK_WORKFLOW_TYPE,
  workflowIdForTask,
  type TaskInput,
  type TaskMemo,
} from '../workflows/task-contract.js';
import { ExitCode, runCli } from '../src/cli/main.js';
import { Receiver, respondJson } from './support/receiver.js';
import { TEST_SIGNING_SECRET, startHarness, stopOwnServer, type Harness } from './support/harness.js';

let harness: Harness;
let receiver: Receiver;

before(async () => {
  harness = await startHarness();
  receiver = await Receiver.start();
});

after(async () => {
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

describe('callback method', () => {
  it('calls with each method; GET and DELETE carry no body or Content-Type and verify over the empty body', async () => {
    const verifier = new Webhook(TEST_SIGNING_SECRET);
    const payload = { report: 'q3', pages: [1, 2] };
    const methods = ['POST', 'PUT', 'PATCH', 'GET', 'DELETE'] as const;
    const ids = await Promise.all(
      methods.map(async (method) => {
        const path = `/method-${method}`;
        receiver.script(path, respondJson(200, { seen: method }));
        const bodiless = method === 'GET' || method === 'DELETE';
        return harness.createTask({ callbackUrl: receiver.url(path), method, ...(bodiless ? {} : { payload }) });
      }),
    );
    for (const [index, method] of methods.entries()) {
      const [call] = await receiver.waitFor(`/method-${method}`, 1);
      assert.ok(call);
      assert.equal(call.method, method);
      assert.equal(call.headers['asyncqueue-task-id'], ids[index]);
      assert.doesNotThrow(() => verifier.verify(call.body, call.headers as Record<string, string>), method);
      if (method === 'GET' || method === 'DELETE') {
        assert.equal(call.body, '', method);
        assert.equal(call.headers['content-type'], undefined, method);
        // The empty body is what was signed: a body that appeared on the way would not verify.
        assert.throws(() => verifier.verify('{}', call.headers as Record<string, string>), method);
      } else {
        assert.equal(call.headers['content-type'], 'application/json', method);
        assert.deepEqual(JSON.parse(call.body), payload, method);
      }
      const view = await harness.waitForEnd(ids[index]!);
      assert.equal(view.status, 'succeeded', method);
      assert.equal(view.method, method);
      assert.deepEqual(view.result, { seen: method });
    }
    // The list shows the method too.
    const listed = await harness.api('GET', '/v1/tasks?limit=100');
    const byId = new Map((listed.body.tasks as Array<{ id: string; method: string }>).map((task) => [task.id, task.method]));
    for (const [index, method] of methods.entries()) {
      if (byId.has(ids[index]!)) assert.equal(byId.get(ids[index]!), method);
    }
  });

  it('is kept by tasks under flow control, whose attempts the workflow schedules one by one', async () => {
    receiver.script('/flow-method', respondJson(503, { busy: true }), respondJson(200, { deleted: true }));
    const id = await harness.createTask({
      callbackUrl: receiver.url('/flow-method'),
      method: 'DELETE',
      flowControl: { key: `method-${randomUUID()}`, parallelism: 1 },
    });
    const calls = await receiver.waitFor('/flow-method', 2);
    assert.deepEqual(
      calls.map((call) => [call.method, call.body]),
      [
        ['DELETE', ''],
        ['DELETE', ''],
      ],
    );
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'succeeded');
    assert.equal(view.method, 'DELETE');
  });

  it('defaults to POST, and the webhook stays POST with a JSON body when the callback is a GET', async () => {
    receiver.script('/default-method', respondJson(200, { ok: 1 }));
    const plain = await harness.createTask({ callbackUrl: receiver.url('/default-method') });
    assert.equal((await harness.task(plain)).method, 'POST');
    const [call] = await receiver.waitFor('/default-method', 1);
    assert.equal(call?.method, 'POST');

    receiver.script('/get-with-webhook', respondJson(200, { fetched: true }));
    const id = await harness.createTask({
      callbackUrl: receiver.url('/get-with-webhook'),
      method: 'GET',
      payload: null,
      webhookUrl: receiver.url('/get-webhook'),
    });
    const [webhook] = await receiver.waitFor('/get-webhook', 1);
    assert.ok(webhook);
    assert.equal(webhook.method, 'POST');
    assert.equal(webhook.headers['content-type'], 'application/json');
    const event = JSON.parse(webhook.body);
    assert.equal(event.taskId, id);
    assert.deepEqual(event.result, { fetched: true });
    assert.doesNotThrow(() => new Webhook(TEST_SIGNING_SECRET).verify(webhook.body, webhook.headers as Record<string, string>));
  });

  it('refuses a payload with GET or DELETE, and an unknown method, naming the field', async () => {
    const callbackUrl = receiver.url('/never');
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ method: 'GET', payload: { a: 1 } }, 'payload'],
      [{ method: 'DELETE', payload: [] }, 'payload'],
      [{ method: 'GET', payload: '' }, 'payload'],
      [{ method: 'DELETE', payload: 0 }, 'payload'],
      [{ method: 'TRACE' }, 'method'],
      [{ method: 'get' }, 'method'],
      [{ method: null }, 'method'],
    ];
    for (const [fields, field] of cases) {
      const response = await harness.api('POST', '/v1/tasks', { callbackUrl, ...fields });
      assert.equal(response.status, 400, JSON.stringify(fields));
      assert.equal(response.body.error.code, 'invalid_request');
      assert.ok(response.body.error.message.startsWith(`${field}: `), response.body.error.message);
    }
    // Absent, null and {} are the empty payload: accepted.
    for (const payload of [undefined, null, {}]) {
      const created = await harness.api('POST', '/v1/tasks', { callbackUrl, method: 'DELETE', payload, delay: 3600 });
      assert.equal(created.status, 202, JSON.stringify(created.body));
      await harness.api('POST', `/v1/tasks/${created.body.id}/cancel`, {});
    }
    assert.equal(receiver.to('/never').length, 0);
  });

  it('makes the method part of the idempotent request: a POST repeats a default, a PUT is a conflict', async () => {
    const key = `method-${randomUUID()}`;
    const body = { callbackUrl: receiver.url('/idem-method'), payload: { n: 1 }, delay: 3600 };
    const first = await harness.api('POST', '/v1/tasks', body, { 'idempotency-key': key });
    assert.equal(first.status, 202);
    const samePost = await harness.api('POST', '/v1/tasks', { ...body, method: 'POST' }, { 'idempotency-key': key });
    assert.equal(samePost.status, 200);
    assert.equal(samePost.body.id, first.body.id);
    const put = await harness.api('POST', '/v1/tasks', { ...body, method: 'PUT' }, { 'idempotency-key': key });
    assert.equal(put.status, 409);
    assert.equal(put.body.error.code, 'idempotency_key_reused');

    // GET: absent, null and {} payloads are one request.
    const getKey = `method-get-${randomUUID()}`;
    const getBody = { callbackUrl: receiver.url('/idem-get'), method: 'GET', delay: 3600 };
    const created = await harness.api('POST', '/v1/tasks', getBody, { 'idempotency-key': getKey });
    assert.equal(created.status, 202);
    const repeat = await harness.api('POST', '/v1/tasks', { ...getBody, payload: null }, { 'idempotency-key': getKey });
    assert.equal(repeat.status, 200);
    assert.equal(repeat.body.method, 'GET');
    for (const id of [first.body.id, created.body.id]) await harness.api('POST', `/v1/tasks/${id}/cancel`, {});
  });

  it('is `asyncqueue tasks create --method` on the command line', async () => {
    receiver.script('/cli-put', respondJson(200, { put: true }));
    const lines: string[] = [];
    const run = (...args: string[]) =>
      runCli(args, { ASYNCQUEUE_URL: harness.baseUrl }, { write: (text) => lines.push(text), error: (text) => lines.push(text) });
    const code = await run('tasks', 'create', '--callback-url', receiver.url('/cli-put'), '--method', 'put', '--json');
    assert.equal(code, ExitCode.Ok, lines.join('\n'));
    const { id } = JSON.parse(lines.at(-1) ?? '{}') as { id: string };
    const [call] = await receiver.waitFor('/cli-put', 1);
    assert.equal(call?.method, 'PUT');
    await harness.waitForEnd(id);
    assert.equal(await run('tasks', 'get', id), ExitCode.Ok);
    assert.match(lines.at(-1) ?? '', /callback: {2}PUT /);
    assert.equal(await run('tasks', 'create', '--callback-url', receiver.url('/never'), '--method', 'TRACE'), ExitCode.Failed);
    assert.match(lines.at(-1) ?? '', /method: /);
  });

  it('shows POST for a task created before `method` existed, and calls it with POST', async () => {
    // Started as the API started tasks before `method`: no method in the input or the memo.
    const id = randomUUID();
    const createdAt = new Date().toISOString();
    const callbackUrl = receiver.url('/old-task');
    receiver.script('/old-task', respondJson(200, { old: true }));
    const input: TaskInput = {
      id,
      callbackUrl,
      payload: { legacy: true },
      webhookUrl: null,
      retries: 0,
      timeoutSeconds: 10,
      delaySeconds: 0,
      headers: {},
      createdAt,
      policy: harness.config.policy,
    };
    const memo: TaskMemo = {
      id,
      status: 'pending',
      callbackUrl,
      webhookUrl: null,
      retries: 0,
      timeout: 10,
      delay: 0,
      createdAt,
      updatedAt: createdAt,
      attempts: 0,
    };
    await harness.client.workflow.start(TASK_WORKFLOW_TYPE, {
      taskQueue: harness.config.taskQueue,
      workflowId: workflowIdForTask(id),
      args: [input],
      memo: { [TASK_MEMO_KEY]: memo },
    });
    const [call] = await receiver.waitFor('/old-task', 1);
    assert.equal(call?.method, 'POST');
    assert.deepEqual(JSON.parse(call?.body ?? ''), { legacy: true });
    const view = await harness.waitForEnd(id);
    assert.equal(view.method, 'POST');
    assert.equal(view.status, 'succeeded');
  });
});
