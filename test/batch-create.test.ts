/**
 * `POST /v1/tasks/batch` (CONTRACT v2, "Batch create") on a real Temporal server: one result per
 * entry in order, a bad entry fails alone and starts nothing (Temporal has no workflow for it),
 * entry-level idempotency keys in the header's key space, the limits, and Temporal down.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import { AsyncQueue } from '../src/client/index.js';
import { taskIdForKey } from '../src/api/tasks/idempotency.js';
import { DevServer, freePort } from '../src/dev/dev-server.js';
import { TEMPORAL_PAYLOAD_LIMIT_BYTES } from '../src/shared/temporal-limits.js';
import { workflowIdForTask } from '../workflows/task-contract.js';
import { onDevServerOnly } from './support/engine.js';
import { Receiver, respondJson } from './support/receiver.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

/** Without API keys every request is this caller, which scopes idempotency keys. */
const CALLER = 'anonymous';

let harness: Harness;
let receiver: Receiver;

before(async () => {
  // The largest body allowed, so that an entry can outgrow what Temporal stores (413) inside it.
  harness = await startHarness({ env: { ASYNCQUEUE_BODY_LIMIT_BYTES: String(TEMPORAL_PAYLOAD_LIMIT_BYTES) } });
  receiver = await Receiver.start();
});

after(async () => {
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

/** Whether Temporal has a workflow for the task a key names. */
async function started(h: Harness, key: string): Promise<boolean> {
  try {
    await h.client.workflow.getHandle(workflowIdForTask(taskIdForKey(CALLER, key))).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

const batch = (h: Harness, tasks: unknown) => h.api('POST', '/v1/tasks/batch', { tasks });

describe('batch create', () => {
  it('answers one result per entry in order; a bad entry fails alone and starts nothing', async () => {
    const run = randomUUID();
    const key = (index: number) => `${run}-${index}`;
    const entries = [
      { callbackUrl: receiver.url('/b0'), payload: { n: 0 } },
      { callbackUrl: receiver.url('/b1'), timeout: 86_401 },
      { callbackUrl: receiver.url('/b2'), method: 'GET' },
      { callbackUrl: receiver.url('/b3'), method: 'DELETE', payload: { n: 3 } },
      { callbackUrl: receiver.url('/b4'), payload: 'x'.repeat(TEMPORAL_PAYLOAD_LIMIT_BYTES - 3 * 1024) },
      { callbackUrl: receiver.url('/b5'), headers: { 'content-type': 'text/plain' } },
      { callbackUrl: receiver.url('/b6'), delay: 1 },
    ].map((entry, index) => ({ ...entry, idempotencyKey: key(index) }));
    const response = await batch(harness, entries);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    const results = response.body.results as any[];
    assert.deepEqual(
      results.map((result) => result.status),
      [202, 400, 202, 400, 413, 400, 202],
    );
    assert.match(results[1].error.message, /^tasks\[1\]\.timeout: /);
    assert.match(results[3].error.message, /^tasks\[3\]\.payload: /);
    assert.match(results[4].error.message, /^tasks\[4\]\.payload: /);
    assert.equal(results[4].error.code, 'payload_too_large');
    assert.match(results[5].error.message, /^tasks\[5\]\.headers\.content-type: /);
    for (const index of [0, 2, 6]) {
      assert.equal(results[index].id, taskIdForKey(CALLER, key(index)));
      assert.ok(!Number.isNaN(Date.parse(results[index].createdAt)));
      assert.equal(await started(harness, key(index)), true, `entry ${index}`);
    }
    for (const index of [1, 3, 4, 5]) assert.equal(await started(harness, key(index)), false, `entry ${index}`);

    // The created ones run as single creates do, with their own method.
    const [get] = await receiver.waitFor('/b2', 1);
    assert.equal(get?.method, 'GET');
    assert.equal(get?.body, '');
    for (const index of [0, 2, 6]) assert.equal((await harness.waitForEnd(results[index].id)).status, 'succeeded');
    for (const bad of ['/b1', '/b3', '/b4', '/b5']) assert.equal(receiver.to(bad).length, 0);
  });

  it('names the entry and field of an entry the schema refuses', async () => {
    const callbackUrl = receiver.url('/never');
    const response = await batch(harness, [
      5,
      { callbackUrl, nope: 1 },
      {},
      { callbackUrl, idempotencyKey: '' },
      { callbackUrl, retries: '3' },
      null,
    ]);
    assert.equal(response.status, 200);
    const messages = (response.body.results as any[]).map((result) => `${result.status} ${result.error?.message}`);
    assert.match(messages[0]!, /^400 tasks\[0\]: must be object$/);
    assert.match(messages[1]!, /^400 tasks\[1\]\.nope: is not a known field$/);
    assert.match(messages[2]!, /^400 tasks\[2\]\.callbackUrl: is required$/);
    assert.match(messages[3]!, /^400 tasks\[3\]\.idempotencyKey: /);
    assert.match(messages[4]!, /^400 tasks\[4\]\.retries: /);
    assert.match(messages[5]!, /^400 tasks\[5\]: must be object$/);
    assert.equal(receiver.to('/never').length, 0);
  });

  it('refuses a body that is not a list of 1–100 entries as a whole, with a plain 400', async () => {
    const entry = { callbackUrl: receiver.url('/never'), delay: 3600 };
    const cases: Array<[unknown, RegExp]> = [
      [{}, /^tasks: is required$/],
      [{ tasks: [] }, /^tasks: /],
      [{ tasks: Array.from({ length: 101 }, () => entry) }, /^tasks: /],
      [{ tasks: entry }, /^tasks: /],
      [{ tasks: [entry], extra: true }, /^extra: is not a known field$/],
      [[entry], /^body: /],
    ];
    for (const [body, message] of cases) {
      const response = await harness.api('POST', '/v1/tasks/batch', body);
      assert.equal(response.status, 400, JSON.stringify(body).slice(0, 80));
      assert.match(response.body.error.message, message);
    }
    assert.equal(receiver.to('/never').length, 0);
    // Its own path, not a task id: only POST, as the document says.
    for (const method of ['GET', 'DELETE']) {
      const response = await harness.api(method, '/v1/tasks/batch');
      assert.equal(response.status, 405, method);
      assert.equal(response.headers.get('allow'), 'POST');
    }
  });

  it('takes 100 entries, and treats entry keys as Idempotency-Key headers: repeat 200, other body 409', async () => {
    receiver.always('/many', respondJson(200, { ok: true }));
    const run = randomUUID();
    const entries = Array.from({ length: 100 }, (_, index) => ({
      callbackUrl: receiver.url('/many'),
      payload: { index },
      delay: 3600,
      idempotencyKey: `${run}-${index}`,
    }));
    const first = await batch(harness, entries);
    assert.equal(first.status, 200);
    assert.equal(first.body.results.length, 100);
    assert.ok(first.body.results.every((result: any) => result.status === 202));

    // The same batch again: every entry is a repeat, with the existing task, in order.
    const again = await batch(harness, entries);
    assert.deepEqual(
      again.body.results.map((result: any) => [result.status, result.id]),
      first.body.results.map((result: any) => [200, result.id]),
    );
    assert.equal(again.body.results[7].task.id, first.body.results[7].id);
    assert.equal(again.body.results[7].task.status, 'scheduled');

    // Another body under a used key: 409 for that entry alone.
    const mixed = await batch(harness, [{ ...entries[0], payload: { other: true } }, entries[1]]);
    assert.deepEqual(
      mixed.body.results.map((result: any) => result.status),
      [409, 200],
    );
    assert.match(mixed.body.results[0].error.message, /^tasks\[0\]\.idempotencyKey: /);
    assert.equal(mixed.body.results[0].error.code, 'idempotency_key_reused');

    // One key space with the header, and a key twice in one batch is one task.
    const headerKey = `${run}-header`;
    const single = { callbackUrl: receiver.url('/many'), delay: 3600 };
    const created = await harness.api('POST', '/v1/tasks', single, { 'idempotency-key': headerKey });
    assert.equal(created.status, 202);
    const twice = `${run}-twice`;
    const shared = await batch(harness, [
      { ...single, idempotencyKey: headerKey },
      { ...single, idempotencyKey: twice },
      { ...single, idempotencyKey: twice },
    ]);
    const [viaHeader, one, other] = shared.body.results as any[];
    assert.equal(viaHeader.status, 200);
    assert.equal(viaHeader.id, created.body.id);
    assert.deepEqual([one.status, other.status].sort(), [200, 202]);
    assert.equal(one.id, other.id);

    const ids = [...first.body.results.map((result: any) => result.id), created.body.id, one.id];
    await Promise.all(ids.map((id: string) => harness.api('POST', `/v1/tasks/${id}/cancel`, {})));
    assert.equal(receiver.to('/many').length, 0);
  });

  it('is aq.tasks.createMany in the SDK', async () => {
    const aq = new AsyncQueue({ baseUrl: harness.baseUrl });
    receiver.script('/sdk-a', respondJson(200, { a: 1 }));
    const results = await aq.tasks.createMany([
      { callbackUrl: receiver.url('/sdk-a'), payload: { a: 1 } },
      { callbackUrl: receiver.url('/sdk-b'), retries: 101 },
    ]);
    assert.equal(results.length, 2);
    const [ok, bad] = results;
    assert.ok(ok?.status === 202);
    assert.ok(bad?.status === 400 && 'error' in bad);
    assert.match(bad.error.message, /^tasks\[1\]\.retries: /);
    if ('id' in ok) assert.equal((await aq.tasks.wait(ok.id, { intervalMs: 100, timeoutMs: 20_000 })).status, 'succeeded');
  });
});

describe('batch create while Temporal is down', onDevServerOnly('stops and restarts a Temporal server of its own'), () => {
  let server: DevServer;
  let own: Harness;
  let dataDir: string;
  let port: number;
  const startServer = () =>
    DevServer.start({ port, uiPort: null, namespace: 'default', dbFile: path.join(dataDir, 'temporal.db') });

  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'asyncqueue-batch-outage-'));
    port = await freePort();
    server = await startServer();
    own = await startHarness({ temporalAddress: server.address, env: { ASYNCQUEUE_TEMPORAL_RPC_TIMEOUT: '3' } });
  });

  after(async () => {
    await own.close();
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('answers 503 for each entry that could not start, starts none of them, and a retry with the keys creates them', async () => {
    receiver.always('/outage', respondJson(200, { ok: true }));
    const run = randomUUID();
    const entries = [
      { callbackUrl: receiver.url('/outage'), idempotencyKey: `${run}-0` },
      { callbackUrl: receiver.url('/outage'), retries: -1, idempotencyKey: `${run}-1` },
      { callbackUrl: receiver.url('/outage'), idempotencyKey: `${run}-2` },
    ];
    await server.stop();
    const down = await batch(own, entries);
    assert.equal(down.status, 200);
    assert.deepEqual(
      down.body.results.map((result: any) => result.status),
      [503, 400, 503],
    );
    assert.equal(down.body.results[0].error.code, 'temporal_unavailable');
    assert.match(down.body.results[0].error.message, /^tasks\[0\]: /);
    assert.ok(Number(down.headers.get('retry-after')) >= 1);

    server = await startServer();
    for (const index of [0, 1, 2]) assert.equal(await started(own, `${run}-${index}`), false, `entry ${index}`);
    // The API finds Temporal back by itself; the same batch then creates what could not start.
    const deadline = Date.now() + 30_000;
    let retried = await batch(own, entries);
    while (retried.body.results?.[0]?.status === 503 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      retried = await batch(own, entries);
    }
    assert.deepEqual(
      retried.body.results.map((result: any) => result.status),
      [202, 400, 202],
    );
    await own.waitForEnd(retried.body.results[0].id);
    await own.waitForEnd(retried.body.results[2].id);
  });
});
