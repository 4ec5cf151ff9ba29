/**
 * Observability: /metrics in Prometheus format (API latency, tasks created and completed, callback
 * and webhook latency by outcome, the Temporal SDK's worker metrics), and logs that carry the task
 * id on every line about a task.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { logRecord } from '../src/worker/runtime.js';
import { Receiver, respondJson } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

const API_KEY = 'metrics-test-key-0123456';
const lines: string[] = [];
let harness: Harness;
let receiver: Receiver;

before(async () => {
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  harness = await startHarness({ env: { ASYNCQUEUE_API_KEYS: API_KEY }, logger: { level: 'info', stream } });
  receiver = await Receiver.start();
});

after(async () => {
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

const auth = { authorization: `Bearer ${API_KEY}` };

async function runTask(body: Record<string, unknown>): Promise<string> {
  const id = await harness.createTask(body, auth);
  await harness.waitForEnd(id, { headers: auth });
  return id;
}

describe('metrics', () => {
  it('exposes API, task, call and Temporal SDK metrics in Prometheus format', async () => {
    receiver.always('/metered-fail', respondJson(422, {}));
    await runTask({ callbackUrl: receiver.url('/metered-ok'), webhookUrl: receiver.url('/metered-hook') });
    await runTask({ callbackUrl: receiver.url('/metered-fail') });

    assert.equal((await fetch(`${harness.baseUrl}/metrics`)).status, 401, 'the API key guards metrics too');
    const text = await eventually(
      async () => {
        const response = await fetch(`${harness.baseUrl}/metrics`, { headers: auth });
        const body = await response.text();
        return body.includes('asyncqueue_tasks_completed_total') ? body : undefined;
      },
      { what: 'worker metrics' },
    );

    const sample = (pattern: RegExp): number => {
      const match = text.split('\n').find((line) => pattern.test(line));
      assert.ok(match, `no line matches ${pattern}`);
      return Number(match.trim().split(/\s+/).pop());
    };
    assert.ok(
      sample(/^asyncqueue_http_request_duration_seconds_count\{method="POST",route="\/v1\/tasks",status_code="202"\}/) >= 2,
    );
    assert.ok(
      sample(/^asyncqueue_http_request_duration_seconds_count\{method="GET",route="\/v1\/tasks\/:id",status_code="200"\}/) >= 1,
    );
    assert.ok(!text.includes(receiver.origin), 'no URLs or ids become label values');
    assert.equal(sample(/^asyncqueue_tasks_created_total\{delay="no"\}/), 2);
    assert.ok(sample(/^asyncqueue_tasks_completed_total\{.*status="succeeded"/) >= 1);
    assert.ok(sample(/^asyncqueue_tasks_completed_total\{.*status="failed"/) >= 1);
    assert.ok(sample(/^asyncqueue_callback_duration_seconds_count\{.*outcome="2xx"/) >= 1);
    assert.ok(sample(/^asyncqueue_callback_duration_seconds_count\{.*outcome="4xx"/) >= 1);
    assert.ok(sample(/^asyncqueue_webhook_duration_seconds_count\{.*outcome="2xx"/) >= 1);
    assert.match(text, /^temporal_workflow_completed_total\{/m, "the Temporal SDK's own worker metrics");
    assert.match(text, /^asyncqueue_api_process_resident_memory_bytes /m);
  });
});

describe('logs', () => {
  it('carry the task id on every API line about a task', async () => {
    const id = await runTask({ callbackUrl: receiver.url('/logged') });
    const about = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => JSON.stringify(line).includes(id));
    assert.ok(about.length >= 2, 'created and read lines');
    for (const line of about) assert.equal(line.taskId, id, JSON.stringify(line));
  });

  it('name the task once per line, also on a cancel (the route and the request both knew the id)', async () => {
    const id = await harness.createTask({ callbackUrl: receiver.url('/logged-cancel'), delay: 60 }, auth);
    const cancel = await harness.api('POST', `/v1/tasks/${id}/cancel`, undefined, auth);
    assert.equal(cancel.status, 202, JSON.stringify(cancel.body));
    const raw = lines.filter((line) => line.includes(id));
    assert.ok(raw.some((line) => line.includes('task cancel requested')));
    // JSON.parse keeps the last of two equal keys: count them in the raw line.
    for (const line of raw) assert.equal(line.split('"taskId":').length - 1, 1, line);
  });

  it('carry the task id on worker lines, derived from the workflow id', () => {
    assert.deepEqual(logRecord({ meta: { workflowId: 'task-abc', attempt: 2 } }), {
      workflowId: 'task-abc',
      attempt: 2,
      taskId: 'abc',
    });
    assert.deepEqual(logRecord({ meta: { taskQueue: 'q' } }), { taskQueue: 'q' });
  });

  it("leave the SDK's activity task token out of worker lines", () => {
    const meta = { workflowId: 'task-abc', activityId: '1', taskToken: 'CiQ0ZjM…', attempt: 1 };
    assert.deepEqual(logRecord({ meta }), { workflowId: 'task-abc', activityId: '1', attempt: 1, taskId: 'abc' });
    assert.equal(meta.taskToken, 'CiQ0ZjM…', "the SDK's own entry is not changed");
  });
});
