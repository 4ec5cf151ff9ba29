/**
 * Progress reports and async completion: a callee that answers 202 with `AsyncQueue-Completion:
 * async` keeps its attempt open and finishes it later through the API, authenticated by the task
 * token its request carried. A plain 202 is a success like any 2xx.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Receiver, respondJson } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

const API_KEY = 'progress-test-key-123456';
const PROGRESS_INTERVAL_S = 1;
let harness: Harness;
let receiver: Receiver;

before(async () => {
  harness = await startHarness({
    env: { ASYNCQUEUE_API_KEYS: API_KEY, ASYNCQUEUE_PROGRESS_INTERVAL: String(PROGRESS_INTERVAL_S) },
  });
  receiver = await Receiver.start();
});

after(async () => {
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

const withKey = { authorization: `Bearer ${API_KEY}` };
/** The callee's answer when it takes the work and reports the outcome later. */
const accepted = (body: unknown = {}) => respondJson(202, body, { 'asyncqueue-completion': 'async' });

/** The callee's side: calls back with the token its callback request carried, no API key. */
function asCallee(token: string) {
  return (path: string, body: unknown) => harness.api('POST', path, body, { 'asyncqueue-task-token': token });
}

describe('progress', () => {
  it('is reported by the callee with its task token and shown in the view and the Temporal UI', async () => {
    receiver.always('/slow-report', () => undefined); // holds the request while "working"
    const id = await harness.createTask({ callbackUrl: receiver.url('/slow-report'), timeout: 60 }, withKey);
    const [call] = await receiver.waitFor('/slow-report', 1);
    const token = String(call!.headers['asyncqueue-task-token']);
    assert.ok(token.length >= 32);

    const report = await asCallee(token)(`/v1/tasks/${id}/progress`, {
      percent: 40,
      message: 'rendering page 5 of 12',
      data: { page: 5 },
    });
    assert.equal(report.status, 202);
    const task = await harness.waitForTask(id, (t) => t.progress?.percent === 40, 'progress', { headers: withKey });
    assert.equal(task.progress.message, 'rendering page 5 of 12');
    assert.deepEqual(task.progress.data, { page: 5 });

    const metadata = (await harness.client.workflow.getHandle(`task-${id}`).query('__temporal_workflow_metadata')) as {
      currentDetails?: string;
    };
    assert.match(metadata.currentDetails ?? '', /40% rendering page 5 of 12/);

    // An API key works too; a wrong token, or another task's token, does not.
    assert.equal((await harness.api('POST', `/v1/tasks/${id}/progress`, { percent: 50 }, withKey)).status, 202);
    assert.equal((await asCallee('not-the-token')(`/v1/tasks/${id}/progress`, { percent: 60 })).status, 401);
    const other = await harness.createTask({ callbackUrl: receiver.url('/other'), delay: 600 }, withKey);
    assert.equal((await asCallee(token)(`/v1/tasks/${other}/progress`, { percent: 1 })).status, 401);
    assert.equal((await harness.api('POST', `/v1/tasks/${id}/progress`, { percent: 70 })).status, 401, 'no credentials');
    const invalid = await asCallee(token)(`/v1/tasks/${id}/progress`, { percent: 101 });
    assert.equal(invalid.status, 400);
    assert.match(invalid.body.error.message, /^percent:/);

    await harness.api('POST', `/v1/tasks/${id}/cancel`, {}, withKey);
    await harness.api('POST', `/v1/tasks/${other}/cancel`, {}, withKey);
  });
});

describe('progress, coalesced', () => {
  it('sends a burst as few signals, shows the newest report at once, and delivers it to the workflow', async () => {
    receiver.always('/chatty', () => undefined);
    const id = await harness.createTask({ callbackUrl: receiver.url('/chatty'), timeout: 60 }, withKey);
    const [call] = await receiver.waitFor('/chatty', 1);
    const report = asCallee(String(call!.headers['asyncqueue-task-token']));
    const startedAt = Date.now();
    for (let percent = 1; percent <= 100; percent++) {
      const answer = await report(`/v1/tasks/${id}/progress`, { percent, message: `step ${percent}` });
      assert.equal(answer.status, 202);
    }
    const elapsedS = (Date.now() - startedAt) / 1000;
    // The newest report is readable at once, though the workflow has not received it yet.
    assert.equal((await harness.task(id, withKey)).progress.percent, 100);

    const handle = harness.client.workflow.getHandle(`task-${id}`);
    await eventually(
      async () =>
        (await handle.query<{ progress?: { percent?: number } }>('taskState')).progress?.percent === 100 ? true : undefined,
      {
        what: 'the held-back report to reach the workflow',
      },
    );
    const signals = ((await handle.fetchHistory()).events ?? []).filter(
      (event) => event.workflowExecutionSignaledEventAttributes?.signalName === 'progress',
    );
    // The first at once, then at most one per interval: far fewer than the 100 reports.
    const bound = 2 + Math.ceil(elapsedS / PROGRESS_INTERVAL_S);
    assert.ok(signals.length <= bound, `${signals.length} progress signals for 100 reports in ${elapsedS} s (bound ${bound})`);
    assert.ok(signals.length >= 2, 'the newest report was delivered after the first');
    await harness.api('POST', `/v1/tasks/${id}/cancel`, {}, withKey);
  });

  it('keeps progress data out of the memo, and refuses data over 4 KiB naming the field', async () => {
    receiver.always('/with-data', accepted());
    const id = await harness.createTask({ callbackUrl: receiver.url('/with-data'), timeout: 60 }, withKey);
    const [call] = await receiver.waitFor('/with-data', 1);
    const callee = asCallee(String(call!.headers['asyncqueue-task-token']));
    assert.equal((await callee(`/v1/tasks/${id}/progress`, { percent: 10, data: { secretish: 'x'.repeat(100) } })).status, 202);
    const tooBig = await callee(`/v1/tasks/${id}/progress`, { data: 'x'.repeat(5000) });
    assert.equal(tooBig.status, 413);
    assert.match(tooBig.body.error.message, /^data:/);
    assert.equal((await callee(`/v1/tasks/${id}/complete`, { result: 'ok' })).status, 202);
    await harness.waitForTask(id, (t) => t.status === 'succeeded', 'succeeded', { headers: withKey });
    const memo = (await harness.client.workflow.getHandle(`task-${id}`).describe()).memo?.task as {
      progress?: Record<string, unknown>;
    };
    assert.equal(memo.progress?.percent, 10);
    assert.ok(!('data' in (memo.progress ?? {})), 'progress.data is in the memo');
  });
});

describe('async completion', () => {
  it('keeps a 202-answered attempt open until /complete, whose result becomes the task result', async () => {
    receiver.always('/accept', accepted({ accepted: true }));
    const id = await harness.createTask(
      { callbackUrl: receiver.url('/accept'), webhookUrl: receiver.url('/accept-hook'), timeout: 60 },
      withKey,
    );
    const [call] = await receiver.waitFor('/accept', 1);
    // The attempt is open on the server, awaited with no heartbeat to lapse (async-completion.test.ts).
    const waiting = await harness.waitForTask(id, (t) => t.status === 'running', 'running', { headers: withKey });
    assert.equal(waiting.attempts, 1);
    assert.equal(receiver.to('/accept').length, 1);

    const token = String(call!.headers['asyncqueue-task-token']);
    const done = await asCallee(token)(`/v1/tasks/${id}/complete`, { result: { reportUrl: 'https://files/r.pdf' } });
    assert.equal(done.status, 202);
    const task = await harness.waitForTask(
      id,
      (t) => t.status === 'succeeded' && t.webhook?.status === 'delivered',
      'succeeded',
      { headers: withKey },
    );
    assert.deepEqual(task.result, { reportUrl: 'https://files/r.pdf' });
    assert.equal(task.attempts, 1);
    const [hook] = await receiver.waitFor('/accept-hook', 1);
    assert.deepEqual(JSON.parse(hook!.body).result, { reportUrl: 'https://files/r.pdf' });

    const again = await asCallee(token)(`/v1/tasks/${id}/complete`, { result: 1 });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'not_awaiting_completion');
  });

  it('retries after a retryable /fail, and fails the task at once on a non-retryable one', async () => {
    const path = '/accept-then-ok';
    receiver.script(path, accepted(), respondJson(200, { second: true }));
    const id = await harness.createTask({ callbackUrl: receiver.url(path), retries: 2 }, withKey);
    const [first] = await receiver.waitFor(path, 1);
    const token = String(first!.headers['asyncqueue-task-token']);
    assert.equal((await asCallee(token)(`/v1/tasks/${id}/fail`, { error: { message: 'renderer crashed' } })).status, 202);
    const task = await harness.waitForTask(id, (t) => t.status === 'succeeded', 'succeeded on attempt 2', { headers: withKey });
    assert.equal(task.attempts, 2);
    assert.deepEqual(task.result, { second: true });

    receiver.always('/accept-then-give-up', accepted());
    const doomed = await harness.createTask({ callbackUrl: receiver.url('/accept-then-give-up'), retries: 5 }, withKey);
    const [call] = await receiver.waitFor('/accept-then-give-up', 1);
    const failed = await asCallee(String(call!.headers['asyncqueue-task-token']))(`/v1/tasks/${doomed}/fail`, {
      error: { message: 'date range is empty', code: 'empty_range' },
      retryable: false,
    });
    assert.equal(failed.status, 202);
    const final = await harness.waitForTask(doomed, (t) => t.status === 'failed', 'failed', { headers: withKey });
    assert.equal(final.error.code, 'empty_range');
    assert.equal(final.error.message, 'date range is empty');
    assert.equal(final.attempts, 1);
    assert.equal(receiver.to('/accept-then-give-up').length, 1);
  });

  it('times an open attempt out after `timeout` seconds and retries it', async () => {
    const path = '/accept-and-forget';
    receiver.script(path, accepted(), respondJson(200, { retried: true }));
    const id = await harness.createTask({ callbackUrl: receiver.url(path), timeout: 1, retries: 1 }, withKey);
    const task = await harness.waitForTask(id, (t) => t.status === 'succeeded', 'succeeded after the timeout', {
      headers: withKey,
    });
    assert.equal(task.attempts, 2);
    const [first, second] = receiver.to(path);
    const gap = second!.receivedAt - first!.receivedAt;
    assert.ok(gap >= 900 && gap < 5_000, `second attempt ${gap} ms after the first`);
  });

  it('still cancels an attempt that awaits completion', async () => {
    receiver.always('/accept-then-cancel', accepted());
    const id = await harness.createTask(
      { callbackUrl: receiver.url('/accept-then-cancel'), webhookUrl: receiver.url('/cancel-hook'), timeout: 60 },
      withKey,
    );
    await receiver.waitFor('/accept-then-cancel', 1);
    await harness.waitForTask(id, (t) => t.status === 'running', 'running', { headers: withKey });
    const cancelledAt = Date.now();
    assert.equal((await harness.api('POST', `/v1/tasks/${id}/cancel`, { reason: 'stop' }, withKey)).status, 202);
    const task = await harness.waitForTask(id, (t) => t.status === 'cancelled', 'cancelled', { headers: withKey });
    assert.ok(Date.now() - cancelledAt < 10_000);
    assert.equal(task.attempts, 1);
    const [hook] = await receiver.waitFor('/cancel-hook', 1);
    assert.equal(JSON.parse(hook!.body).type, 'task.cancelled');
    assert.equal(receiver.to('/accept-then-cancel').length, 1);
  });
});
