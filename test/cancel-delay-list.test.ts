/**
 * Cancel (a signal that aborts the in-flight call), delay, listing, and reading finished tasks
 * while no worker runs — on a real Temporal server with real receivers on loopback.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { workflowIdForTask } from '../workflows/task-contract.js';
import { Receiver, respondJson } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';
import { terminateRunning, visibilityCaughtUp } from './support/cleanup.js';
import { callbackAttemptsOnceClosed } from './support/history.js';

let harness: Harness;
let receiver: Receiver;

before(async () => {
  harness = await startHarness();
  receiver = await Receiver.start();
});

after(async () => {
  await terminateRunning(harness); // tasks created while the worker was stopped, or left by a failure
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

/** README: "an in-flight callback request is aborted within about two seconds"; a loaded CI box gets 1.5 s more. */
const CANCEL_WITHIN_MS = 3_500;

/** Holds every request to `path` open, as a slow report would; returns when AsyncQueue hung up. */
function holdOpen(path: string): () => number | undefined {
  let closedAt: number | undefined;
  receiver.always(path, (_received, _response, request) => {
    request.socket.once('close', () => {
      closedAt ??= Date.now();
    });
  });
  return () => closedAt;
}

describe('cancel', () => {
  it('aborts the in-flight callback, starts no further attempt and sends task.cancelled', async () => {
    const path = '/hold';
    const connectionClosedAt = holdOpen(path);
    const id = await harness.createTask({
      callbackUrl: receiver.url(path),
      webhookUrl: receiver.url('/hold-hook'),
      retries: 5,
      timeout: 60,
    });
    await receiver.waitFor(path, 1);
    await harness.waitForTask(id, (task) => task.status === 'running', 'running');

    const cancelledAt = Date.now();
    const response = await harness.api('POST', `/v1/tasks/${id}/cancel`, { reason: 'user gave up' });
    assert.equal(response.status, 202);
    assert.equal(response.body.id, id);

    const final = await harness.waitForTask(
      id,
      (task) => task.status === 'cancelled' && task.webhook?.status !== 'pending',
      'cancelled',
    );
    const closedAt = connectionClosedAt();
    assert.ok(closedAt !== undefined, 'the receiver saw the connection close');
    assert.ok(closedAt - cancelledAt < CANCEL_WITHIN_MS, `the call was aborted ${closedAt - cancelledAt} ms after cancel`);
    assert.equal(final.error.code, 'cancelled');
    assert.equal(final.error.message, 'user gave up');
    assert.equal(final.attempts, 1);

    const [hook] = await receiver.waitFor('/hold-hook', 1);
    const event = JSON.parse(hook!.body);
    assert.equal(event.type, 'task.cancelled');
    assert.equal(event.status, 'cancelled');
    assert.equal(event.taskId, id);
    assert.equal(final.webhook.status, 'delivered');

    // No attempt after the cancel, by the history of the closed workflow.
    assert.equal(await callbackAttemptsOnceClosed(harness, id), 1);
    assert.equal(receiver.to(path).length, 1);
  });

  it('cancels a task waiting for its delay without calling the callback', async () => {
    const id = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 300 });
    assert.equal((await harness.task(id)).status, 'scheduled');
    const response = await harness.api('POST', `/v1/tasks/${id}/cancel`);
    assert.equal(response.status, 202);
    const final = await harness.waitForTask(id, (task) => task.status === 'cancelled', 'cancelled');
    assert.equal(final.attempts, 0);
    assert.equal(receiver.to('/never').length, 0);
  });

  it('cancels a task waiting between attempts', async () => {
    const path = '/retry-wait';
    receiver.always(path, respondJson(503, {}, { 'retry-after': '60' }));
    const id = await harness.createTask({ callbackUrl: receiver.url(path), retries: 3 });
    await harness.waitForTask(id, (task) => task.status === 'retrying', 'retrying');
    assert.equal((await harness.api('POST', `/v1/tasks/${id}/cancel`, {})).status, 202);
    const final = await harness.waitForTask(id, (task) => task.status === 'cancelled', 'cancelled');
    assert.equal(final.attempts, 1);
    assert.equal(receiver.to(path).length, 1);
  });

  it('answers 409 for a task that has ended and 404 for an unknown one', async () => {
    const id = await harness.createTask({ callbackUrl: receiver.url('/quick') });
    await harness.waitForTask(id, (task) => task.status === 'succeeded', 'succeeded');
    const ended = await harness.api('POST', `/v1/tasks/${id}/cancel`);
    assert.equal(ended.status, 409);
    assert.equal(ended.body.error.code, 'task_already_ended');
    assert.equal((await harness.task(id)).status, 'succeeded');

    const unknown = await harness.api('POST', '/v1/tasks/00000000-0000-4000-8000-000000000000/cancel');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'task_not_found');
  });
});

describe('cancel with a long heartbeat timeout', () => {
  // Heartbeats 24 s apart at best here: a cancel that waited for one would take that long. The
  // workflow's cut-off (abortHeldCall on the holding worker) must bring it in about a second instead.
  let slow: Harness;
  before(async () => {
    slow = await startHarness({ env: { ASYNCQUEUE_HEARTBEAT_TIMEOUT: '60' } });
  });
  after(async () => {
    await terminateRunning(slow);
    await slow.close();
  });

  it('still cuts a held call off within seconds, as cancelled, with no further attempt', async () => {
    const path = '/hold-long-heartbeat';
    const connectionClosedAt = holdOpen(path);
    const id = await slow.createTask({
      callbackUrl: receiver.url(path),
      webhookUrl: receiver.url('/hold-long-heartbeat-hook'),
      retries: 3,
      timeout: 120,
    });
    await receiver.waitFor(path, 1);
    // Not a check: the call is held past a cancel-watch interval, as a slow report would be. Its
    // first heartbeat comes 24 s in (40 % of 60 s): only a heartbeat that late could carry the cancel.
    await new Promise((resolve) => setTimeout(resolve, 2_000));

    const cancelledAt = Date.now();
    assert.equal((await slow.api('POST', `/v1/tasks/${id}/cancel`, { reason: 'no time' })).status, 202);
    const closedAt = await eventually(async () => connectionClosedAt(), {
      timeoutMs: 15_000,
      what: 'the held call to be cut off',
    });
    const tookMs = closedAt - cancelledAt;
    process.stdout.write(`# cancel → held call cut off: ${tookMs} ms (heartbeat timeout 60 s)\n`);
    assert.ok(tookMs < CANCEL_WITHIN_MS, `the call was cut off ${tookMs} ms after the cancel`);

    const final = await slow.waitForTask(
      id,
      (task) => task.status === 'cancelled' && task.webhook?.status === 'delivered',
      'cancelled',
    );
    assert.equal(final.error.code, 'cancelled');
    assert.equal(final.error.message, 'no time');
    assert.equal(final.attempts, 1);
    const [hook] = await receiver.waitFor('/hold-long-heartbeat-hook', 1);
    assert.equal(JSON.parse(hook!.body).type, 'task.cancelled');
    assert.equal(await callbackAttemptsOnceClosed(slow, id), 1, 'no attempt after the cancel');
    assert.equal(receiver.to(path).length, 1);
  });

  it('cancels an attempt that awaits async completion within seconds, too', async () => {
    // The callee took the work (202 with AsyncQueue-Completion: async): no call is open and no
    // heartbeat could carry the cancel (they would be 24 s apart); the cancel must still end the
    // attempt within seconds.
    const path = '/accept-long-heartbeat';
    receiver.always(path, respondJson(202, {}, { 'asyncqueue-completion': 'async' }));
    const id = await slow.createTask({ callbackUrl: receiver.url(path), retries: 3, timeout: 120 });
    await receiver.waitFor(path, 1);
    await slow.waitForTask(id, (task) => task.status === 'running', 'running');
    // Not a check: the attempt has awaited for longer than a cancel-watch interval, as a real one would.
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    const cancelledAt = Date.now();
    assert.equal((await slow.api('POST', `/v1/tasks/${id}/cancel`, { reason: 'changed my mind' })).status, 202);
    const final = await slow.waitForTask(id, (task) => task.status === 'cancelled', 'cancelled', { timeoutMs: 15_000 });
    const tookMs = Date.now() - cancelledAt;
    process.stdout.write(`# cancel → awaiting attempt cancelled: ${tookMs} ms (heartbeat timeout 60 s)\n`);
    assert.ok(tookMs < CANCEL_WITHIN_MS, `the task ended cancelled ${tookMs} ms after the cancel`);
    assert.equal(final.error.message, 'changed my mind');
    assert.equal(final.attempts, 1);
    assert.equal(await callbackAttemptsOnceClosed(slow, id), 1, 'no attempt after the cancel');
    assert.equal(receiver.to(path).length, 1);
  });
});

describe('delay', () => {
  it('waits `delay` seconds as scheduled, then runs', async () => {
    const path = '/delayed';
    const created = await harness.api('POST', '/v1/tasks', { callbackUrl: receiver.url(path), delay: 2 });
    assert.equal(created.status, 202);
    assert.equal(created.body.status, 'scheduled');
    const id = created.body.id as string;
    assert.equal((await harness.task(id)).status, 'scheduled');
    const [call] = await receiver.waitFor(path, 1, 15_000);
    const waited = call!.receivedAt - Date.parse(created.body.createdAt);
    assert.ok(waited >= 2_000 && waited < 2_000 + 2_000, `called after ${waited} ms`);
    assert.equal((await harness.waitForTask(id, (task) => task.status === 'succeeded', 'succeeded')).delay, 2);
  });
});

describe('list', () => {
  /**
   * Every row of `GET /v1/tasks?<query>` that is one of `ids`, in list order, paging with the
   * cursor: other test files fill the same namespace at the same time, so this file's tasks may be
   * anywhere in it. Checks on the way that every row of every page read has `status`.
   */
  async function listed(query: string, ids: readonly string[], status?: string): Promise<any[]> {
    return eventually(
      async () => {
        const rows: any[] = [];
        let cursor: string | null = null;
        for (let pages = 0; pages < 100; pages++) {
          const url: string = `/v1/tasks?limit=100${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
          const page = await harness.api('GET', url);
          assert.equal(page.status, 200, JSON.stringify(page.body));
          if (status !== undefined) for (const task of page.body.tasks) assert.equal(task.status, status, url);
          rows.push(...page.body.tasks.filter((task: any) => ids.includes(task.id)));
          cursor = page.body.nextCursor;
          if (cursor === null || rows.length === ids.length) break;
        }
        return rows.length === ids.length ? rows : undefined;
      },
      { what: `${ids.join(', ')} in /v1/tasks?${query}` },
    );
  }

  it('lists tasks in progress first, filters by status and pages with a cursor', async () => {
    receiver.always('/list-fail', respondJson(400, { error: 'bad' }));
    const succeeded: string[] = [];
    for (let i = 0; i < 3; i++) succeeded.push(await harness.createTask({ callbackUrl: receiver.url('/list-ok') }));
    const failed = await harness.createTask({ callbackUrl: receiver.url('/list-fail') });
    const scheduled = await harness.createTask({ callbackUrl: receiver.url('/list-later'), delay: 600 });
    for (const id of succeeded) await harness.waitForTask(id, (task) => task.status === 'succeeded', 'succeeded');
    await harness.waitForTask(failed, (task) => task.status === 'failed', 'failed');
    const ours = [...succeeded, failed, scheduled];

    const [failedRow] = await listed('&status=failed', [failed], 'failed');
    assert.equal(failedRow.error.statusCode, 400);
    assert.equal(failedRow.attempts, 1);
    assert.deepEqual(
      (await listed('&status=scheduled', [scheduled], 'scheduled')).map((task) => task.id),
      [scheduled],
    );
    assert.equal((await listed('&status=succeeded', succeeded, 'succeeded')).length, 3);
    // Every row of every page read had the status asked for, so none of ours was listed under a
    // status it does not have.

    // Paging: two at a time, every page within the limit, no task twice, all three found.
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `/v1/tasks?status=succeeded&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await harness.api('GET', query);
      assert.equal(page.status, 200);
      assert.ok(page.body.tasks.length <= 2);
      seen.push(...page.body.tasks.map((task: any) => task.id));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor !== null && !succeeded.every((id) => seen.includes(id)) && pages < 5_000);
    assert.equal(new Set(seen).size, seen.length);
    for (const id of succeeded) assert.ok(seen.includes(id));

    // Temporal visibility's order, among this file's tasks: the one in progress first, then the
    // ended ones, the most recently ended first (by the close times Temporal recorded).
    await visibilityCaughtUp(harness);
    const rows = await listed('', ours);
    assert.equal(rows[0].id, scheduled);
    const closedAt = await Promise.all(
      rows.slice(1).map(async (task) => {
        const { closeTime } = await harness.client.workflow.getHandle(workflowIdForTask(task.id)).describe();
        assert.ok(closeTime, `${task.id} has closed`);
        return closeTime.getTime();
      }),
    );
    assert.deepEqual(
      closedAt,
      [...closedAt].sort((a, b) => b - a),
      `list order ${rows.map((task) => task.id).join(', ')}`,
    );

    await harness.api('POST', `/v1/tasks/${scheduled}/cancel`);
  });

  it('rejects a cursor it did not issue, quickly, as a 400', async () => {
    for (let i = 0; i < 3; i++) await harness.createTask({ callbackUrl: receiver.url('/cursor-source') });
    const page = await eventually(async () => {
      const response = await harness.api('GET', '/v1/tasks?limit=1');
      return response.body.nextCursor ? response.body : undefined;
    });
    const real = Buffer.from(page.nextCursor as string, 'base64url');
    const tampered = Buffer.from(real);
    tampered[6] = tampered[6]! ^ 0xff; // a bit of Temporal's own token flipped
    const forged = [
      'not-a-cursor',
      Buffer.from('aq2:{"garbage":true}0123456789abcdef').toString('base64url'),
      tampered.toString('base64url'),
      real.subarray(0, real.length - 1).toString('base64url'),
    ];
    for (const cursor of forged) {
      const started = Date.now();
      const response = await harness.api('GET', `/v1/tasks?cursor=${cursor}`);
      assert.equal(response.status, 400, cursor);
      assert.match(response.body.error.message, /^cursor:/);
      assert.ok(Date.now() - started < 1_000, 'refused without asking Temporal');
    }
  });
});

describe('without a worker', () => {
  it('still reads finished tasks, and lists them', async () => {
    const path = '/before-stop';
    receiver.always(path, respondJson(200, { answer: 42, text: 'ünïcødé ✓' }));
    const id = await harness.createTask({ callbackUrl: receiver.url(path), webhookUrl: receiver.url('/before-stop-hook') });
    await harness.waitForTask(id, (task) => task.status === 'succeeded' && task.webhook?.status === 'delivered', 'delivered');
    // The workflow must have closed, not just reported success, before the worker goes away.
    await eventually(async () =>
      (await harness.client.workflow.getHandle(`task-${id}`).describe()).status.name === 'COMPLETED' ? true : undefined,
    );

    await harness.stopWorker();
    try {
      const task = await harness.task(id);
      assert.equal(task.status, 'succeeded');
      assert.deepEqual(task.result, { answer: 42, text: 'ünïcødé ✓' });
      assert.equal(task.webhook.status, 'delivered');

      // A running task reads from what the server stores when no worker answers the query.
      const pending = await harness.createTask({ callbackUrl: receiver.url('/while-stopped') });
      const stored = await harness.task(pending);
      assert.equal(stored.status, 'pending');
      assert.equal(stored.callbackUrl, receiver.url('/while-stopped'));
    } finally {
      await harness.startWorker();
    }
  });
});
