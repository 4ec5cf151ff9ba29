/**
 * The task lifecycle end to end on a real Temporal server, with real HTTP receivers on loopback:
 * the seed's flow, retries, timeouts, the CONTRACT's classification of answers, signatures.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { parseRetryAfter } from '../activities/outgoing-request.js';
import { TASK_STATUS_SEARCH_ATTRIBUTE } from '../workflows/task-contract.js';
import { eventually } from './support/eventually.js';
import { Receiver, respondJson } from './support/receiver.js';
import { TEST_SIGNING_SECRET, startHarness, stopOwnServer, type Harness } from './support/harness.js';

let harness: Harness;
let receiver: Receiver;

before(async () => {
  harness = await startHarness({ env: { ASYNCQUEUE_MAX_RESPONSE_BYTES: '65536' } });
  receiver = await Receiver.start();
});

after(async () => {
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

describe('the seed flow', () => {
  it('calls the callback with the payload, stores its result and delivers a signed webhook', async () => {
    const callbackPath = '/api/run-report';
    const webhookPath = '/api/on-report-ready';
    const result = { jobId: 'job-1', reportUrl: 'https://files.example/report-1.pdf', pageCount: 12 };
    receiver.script(callbackPath, respondJson(200, result));
    const payload = { jobId: 'job-1', dateRange: { from: '2026-01-01', to: '2026-03-31' }, format: 'pdf' };

    const created = await harness.api('POST', '/v1/tasks', {
      callbackUrl: receiver.url(callbackPath),
      payload,
      webhookUrl: receiver.url(webhookPath),
      retries: 3,
      timeout: 120,
    });
    assert.equal(created.status, 202);
    assert.equal(created.body.status, 'pending');
    assert.match(created.body.id, /^[0-9a-f-]{36}$/);
    assert.equal(created.headers.get('location'), `/v1/tasks/${created.body.id}`);
    assert.ok(!Number.isNaN(Date.parse(created.body.createdAt)));
    const id = created.body.id as string;

    const [callback] = await receiver.waitFor(callbackPath, 1);
    assert.ok(callback);
    assert.equal(callback.method, 'POST');
    assert.equal(callback.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(callback.body), payload);
    assert.equal(callback.headers['asyncqueue-task-id'], id);
    assert.equal(callback.headers['asyncqueue-attempt'], '1');
    assert.match(String(callback.headers['user-agent']), /^AsyncQueue\//);

    const [webhook] = await receiver.waitFor(webhookPath, 1);
    assert.ok(webhook);
    const event = JSON.parse(webhook.body);
    assert.deepEqual(Object.keys(event).sort(), ['attempts', 'result', 'status', 'taskId', 'timestamp', 'type']);
    assert.equal(event.type, 'task.succeeded');
    assert.equal(event.taskId, id);
    assert.equal(event.status, 'succeeded');
    assert.equal(event.attempts, 1);
    assert.deepEqual(event.result, result);
    assert.ok(!Number.isNaN(Date.parse(event.timestamp)));

    // Both requests verify with an independent Standard Webhooks implementation, and carry different ids.
    const verifier = new Webhook(TEST_SIGNING_SECRET);
    for (const request of [callback, webhook]) {
      assert.doesNotThrow(() => verifier.verify(request.body, request.headers as Record<string, string>));
    }
    assert.notEqual(callback.headers['webhook-id'], webhook.headers['webhook-id']);
    assert.throws(() => verifier.verify(`${webhook.body} `, webhook.headers as Record<string, string>));

    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'succeeded');
    assert.deepEqual(view.result, result);
    assert.equal(view.attempts, 1);
    assert.equal(view.callbackUrl, receiver.url(callbackPath));
    assert.equal(view.webhookUrl, receiver.url(webhookPath));
    assert.equal(view.retries, 3);
    assert.equal(view.timeout, 120);
    assert.equal(view.error, undefined);
    assert.equal(view.webhook.status, 'delivered');
    assert.equal(view.webhook.attempts, 1);
    assert.ok(Date.parse(view.updatedAt) >= Date.parse(view.createdAt));

    // What the Temporal UI shows: the one-line summary and a current TaskStatus search attribute.
    const description = await harness.client.workflow.getHandle(`task-${id}`).describe();
    assert.equal(await description.staticSummary(), `POST ${new URL(receiver.origin).host}`);
    assert.equal(description.typedSearchAttributes.get(TASK_STATUS_SEARCH_ATTRIBUTE), 'succeeded');
  });

  it('keeps a non-JSON answer as text and an empty answer as null', async () => {
    receiver.script('/text', (_received, response) => {
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('plain text ✓');
    });
    receiver.script('/empty', (_received, response) => {
      response.writeHead(204);
      response.end();
    });
    const textId = await harness.createTask({ callbackUrl: receiver.url('/text') });
    const emptyId = await harness.createTask({ callbackUrl: receiver.url('/empty') });
    assert.equal((await harness.waitForEnd(textId)).result, 'plain text ✓');
    const empty = await harness.waitForEnd(emptyId);
    assert.equal(empty.status, 'succeeded');
    assert.equal(empty.result, null);
  });
});

describe('IPv6', () => {
  it('calls a callback at an IPv6 literal, [::1], through the guarded connector', async (t) => {
    const v6 = await Receiver.start('::1').catch((err: unknown) => err as Error);
    if (v6 instanceof Error) return t.skip(`IPv6 loopback is unavailable here (${String(v6)})`);
    try {
      v6.script('/v6', respondJson(200, { over: 'ipv6' }));
      assert.match(v6.url('/v6'), /^http:\/\/\[::1\]:\d+\/v6$/);
      const id = await harness.createTask({ callbackUrl: v6.url('/v6'), retries: 0 });
      const view = await harness.waitForEnd(id);
      assert.equal(view.status, 'succeeded', JSON.stringify(view));
      assert.deepEqual(view.result, { over: 'ipv6' });
      assert.equal(v6.to('/v6').length, 1);
    } finally {
      await v6.close();
    }
  });
});

describe('retries', () => {
  it('retries 5xx and network-level failures, then succeeds, with attempt headers and one webhook-id', async () => {
    const path = '/flaky';
    receiver.script(
      path,
      respondJson(503, { error: 'busy' }),
      (_received, _response, request) => {
        request.socket.destroy(); // connection reset
      },
      respondJson(200, { ok: 'third time' }),
    );
    const id = await harness.createTask({ callbackUrl: receiver.url(path), retries: 3, webhookUrl: receiver.url('/flaky-hook') });
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'succeeded');
    assert.equal(view.attempts, 3);
    assert.deepEqual(view.result, { ok: 'third time' });

    const calls = receiver.to(path);
    assert.deepEqual(
      calls.map((call) => call.headers['asyncqueue-attempt']),
      ['1', '2', '3'],
    );
    assert.equal(new Set(calls.map((call) => call.headers['webhook-id'])).size, 1);
    const [hook] = await receiver.waitFor('/flaky-hook', 1);
    assert.equal(JSON.parse(hook!.body).attempts, 3);
  });

  it('reports retrying between attempts and fails once the retries are spent', async () => {
    const path = '/always-500';
    receiver.always(path, respondJson(500, { error: 'broken' }));
    const id = await harness.createTask({
      callbackUrl: receiver.url(path),
      retries: 2,
      webhookUrl: receiver.url('/always-500-hook'),
    });
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'failed');
    assert.equal(view.attempts, 3);
    assert.equal(view.error.statusCode, 500);
    assert.equal(view.error.code, 'callback_http_status');
    assert.equal(receiver.to(path).length, 3);

    const [hook] = await receiver.waitFor('/always-500-hook', 1);
    const event = JSON.parse(hook!.body);
    assert.equal(event.type, 'task.failed');
    assert.equal(event.status, 'failed');
    assert.equal(event.error.statusCode, 500);
    assert.equal(event.result, undefined);
  });

  it('shows retrying, with the next attempt time, while it waits', async () => {
    const path = '/retry-later';
    receiver.script(path, respondJson(503, {}, { 'retry-after': '3' }), respondJson(200, { done: true }));
    const id = await harness.createTask({ callbackUrl: receiver.url(path), retries: 1 });
    const retrying = await harness.waitForTask(id, (task) => task.status === 'retrying', 'retrying');
    assert.equal(retrying.attempts, 1);
    assert.equal(typeof retrying.nextAttemptAt, 'string', JSON.stringify(retrying));
    const nextAttemptAt = Date.parse(retrying.nextAttemptAt);
    const [first] = receiver.to(path);
    // Temporal schedules the retry 3 s after it recorded the failure, which is after the receiver
    // answered; only load can push it further.
    const ahead = nextAttemptAt - first!.receivedAt;
    assert.ok(ahead >= 3_000 && ahead < 3_000 + 2_000, `next attempt announced ${ahead} ms after the first`);
    assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
    const [, second] = receiver.to(path);
    assert.ok(second!.receivedAt >= nextAttemptAt, `the second attempt came ${nextAttemptAt - second!.receivedAt} ms early`);
  });

  it('honours Retry-After in seconds and as an HTTP date', async () => {
    // A date only has whole seconds: this one is the start of the second at least 2 s ahead, so
    // the retry is due at exactly `dueAt`, 2-3 s after the answer (the backoff alone is 0.2 s).
    let dueAt = 0;
    const dateTwoSecondsAhead = (): string => {
      dueAt = Math.ceil((Date.now() + 2_000) / 1_000) * 1_000;
      return new Date(dueAt).toUTCString();
    };
    for (const [path, retryAfter, due] of [
      ['/retry-after-seconds', () => '2', (first: number) => first + 2_000],
      ['/retry-after-date', dateTwoSecondsAhead, () => dueAt],
    ] as const) {
      receiver.script(
        path,
        (_received, response) => {
          response.writeHead(429, { 'retry-after': retryAfter() });
          response.end();
        },
        respondJson(200, { ok: true }),
      );
      const id = await harness.createTask({ callbackUrl: receiver.url(path), retries: 1 });
      assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
      const [first, second] = receiver.to(path);
      // Never before the time the header asked for (the worker reads the answer after the
      // receiver sent it), and not much later either: a retry timer plus a dispatch, under load.
      const lateMs = second!.receivedAt - due(first!.receivedAt);
      assert.ok(lateMs >= 0 && lateMs < 2_000, `${path}: second attempt came ${lateMs} ms after the time asked for`);
    }
  });

  it('ignores a Retry-After that is neither delta-seconds nor an HTTP date, or asks for no wait', async () => {
    // Each callee has exactly one retry left: a Retry-After read as "no delay" (Temporal ends the
    // retries on a zero next-retry delay) or mistaken for a date fails the task instead.
    const cases = [
      ['/retry-after-fraction', '1.5'],
      ['/retry-after-zero', '0'],
      ['/retry-after-past-date', 'Sun, 06 Nov 1994 08:49:37 GMT'],
    ] as const;
    const ids = await Promise.all(
      cases.map(([path, retryAfter]) => {
        receiver.script(path, respondJson(503, { busy: true }, { 'retry-after': retryAfter }), respondJson(200, { ok: path }));
        return harness.createTask({ callbackUrl: receiver.url(path), retries: 1 });
      }),
    );
    for (const [index, id] of ids.entries()) {
      const [path, retryAfter] = cases[index]!;
      const view = await harness.waitForEnd(id);
      assert.equal(view.status, 'succeeded', `Retry-After: ${retryAfter} → ${JSON.stringify(view)}`);
      assert.equal(view.attempts, 2);
      assert.deepEqual(view.result, { ok: path });
    }
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2026, 10, 28, 11, 0, 0); // Sat, 28 Nov 2026 11:00:00 GMT

  it('reads delta-seconds', () => {
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(' 3 ', now), 3_000);
    assert.equal(parseRetryAfter(['5', '7'], now), 5_000);
    assert.equal(parseRetryAfter('0086400', now), 86_400_000);
  });

  it('reads the three HTTP-date forms of RFC 9110', () => {
    assert.equal(parseRetryAfter('Sat, 28 Nov 2026 11:00:05 GMT', now), 5_000); // IMF-fixdate
    assert.equal(parseRetryAfter('Saturday, 28-Nov-26 11:00:05 GMT', now), 5_000); // RFC 850
    assert.equal(parseRetryAfter('Sat Nov 28 11:00:05 2026', now), 5_000); // asctime
    assert.equal(parseRetryAfter('Sun Dec  6 11:00:00 2026', now), 8 * 86_400_000); // asctime, space-padded day
    assert.equal(parseRetryAfter('Tue, 01 Dec 2026 00:00:00 GMT', now), Date.UTC(2026, 11, 1) - now);
    assert.equal(parseRetryAfter('Sat, 28 Nov 2026 11:00:60 GMT', now), 60_000); // a leap second
    assert.equal(parseRetryAfter(new Date(now + 42_000).toUTCString(), now), 42_000);
  });

  it('reads a two-digit RFC 850 year as at most 50 years ahead', () => {
    assert.equal(parseRetryAfter('Saturday, 01-Jan-76 00:00:00 GMT', now), Date.UTC(2076, 0, 1) - now);
    assert.equal(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT', now), undefined); // 1994, not 2094
  });

  it('gives undefined for no wait: zero, now, or a date in the past', () => {
    for (const value of [
      '0',
      '000',
      new Date(now).toUTCString(),
      'Sat, 28 Nov 2026 10:59:59 GMT',
      'Sun, 06 Nov 1994 08:49:37 GMT',
    ]) {
      assert.equal(parseRetryAfter(value, now), undefined, value);
    }
  });

  it('ignores anything else, including what Date.parse would accept', () => {
    for (const value of [
      undefined,
      '',
      '1.5',
      '-1',
      '+3',
      '1e3',
      '0x10',
      '3 s',
      'soon',
      '2026-11-28T11:00:05Z',
      '2026-11-29',
      'Sun Nov 29 2026 11:00:05 GMT+0000',
      '29 Nov 2026 11:00:05 GMT',
      'Sun, 29 Nov 2026 11:00:05 UTC',
      'Sun, 29 Nov 2026 11:00:05 +0000',
      'sun, 29 nov 2026 11:00:05 gmt',
      'Sun, 29 Nov 2026 11:00 GMT',
      'Sun,  29 Nov 2026 11:00:05 GMT',
      'Mon, 31 Nov 2026 11:00:05 GMT',
      'Sun, 29 Nov 2026 24:00:00 GMT',
      'Sun, 29 Nov 2026 11:60:00 GMT',
      'Sunday, 29-Nov-2026 11:00:05 GMT',
      'Sun Nov 29 11:00:05 2026 GMT',
    ]) {
      assert.equal(parseRetryAfter(value, now), undefined, String(value));
    }
  });
});

describe('classification', () => {
  it('fails at once on a non-retryable 4xx', async () => {
    receiver.always('/gone', respondJson(404, { error: 'no such report' }));
    const id = await harness.createTask({ callbackUrl: receiver.url('/gone'), retries: 5 });
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'failed');
    assert.equal(view.attempts, 1);
    assert.equal(view.error.statusCode, 404);
    assert.equal(receiver.to('/gone').length, 1);
  });

  it('retries 408, 425 and 429 like 5xx', async () => {
    const path = '/retryable-4xx';
    receiver.script(path, respondJson(408, {}), respondJson(425, {}), respondJson(429, {}), respondJson(200, { ok: 1 }));
    const id = await harness.createTask({ callbackUrl: receiver.url(path), retries: 3 });
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'succeeded');
    assert.equal(view.attempts, 4);
  });

  it('does not follow redirects', async () => {
    receiver.always('/moved', (_received, response) => {
      response.writeHead(302, { location: receiver.url('/redirect-target') });
      response.end();
    });
    const id = await harness.createTask({ callbackUrl: receiver.url('/moved'), retries: 2 });
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'failed');
    assert.equal(view.error.code, 'redirect_not_followed');
    assert.equal(view.error.statusCode, 302);
    assert.equal(receiver.to('/redirect-target').length, 0);
    assert.equal(receiver.to('/moved').length, 1);
  });

  it('times out an attempt after `timeout` seconds and retries it', async () => {
    const path = '/slow';
    // How long each attempt was held before AsyncQueue hung up (it never waits for this answer).
    const heldMs: number[] = [];
    receiver.always(path, (received, response, request) => {
      request.socket.once('close', () => heldMs.push(Date.now() - received.receivedAt));
      setTimeout(() => response.writeHead(200).end('{}'), 4_000).unref();
    });
    const id = await harness.createTask({ callbackUrl: receiver.url(path), timeout: 1, retries: 1 });
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'failed');
    assert.equal(view.error.code, 'callback_timeout');
    assert.equal(view.attempts, 2);
    assert.equal(receiver.to(path).length, 2);
    // Each attempt cut at its 1 s timeout (the worker's clock starts just before the receiver's).
    await eventually(async () => (heldMs.length === 2 ? true : undefined), { what: 'both attempts to be hung up' });
    for (const ms of heldMs) assert.ok(ms >= 900 && ms < 1_000 + 750, `an attempt was held ${ms} ms with a 1 s timeout`);
  });

  it('keeps a call that outlasts the heartbeat timeout alive with heartbeats', async () => {
    // The test heartbeat timeout is 2 s: without heartbeats during the call, Temporal would time
    // the attempt out and retry it.
    const path = '/slower-than-heartbeat-timeout';
    receiver.always(path, (_received, response) => {
      setTimeout(() => response.writeHead(200, { 'content-type': 'application/json' }).end('{"done":true}'), 4_500).unref();
    });
    const id = await harness.createTask({ callbackUrl: receiver.url(path), timeout: 10, retries: 2 });
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'succeeded', JSON.stringify(view));
    assert.equal(view.attempts, 1);
    assert.deepEqual(view.result, { done: true });
    assert.equal(receiver.to(path).length, 1);
  });

  it('fails a task whose answer is over the response size limit', async () => {
    receiver.always('/huge', respondJson(200, { blob: 'x'.repeat(100_000) }));
    const id = await harness.createTask({ callbackUrl: receiver.url('/huge'), retries: 3 });
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'failed');
    assert.equal(view.error.code, 'response_too_large');
    assert.equal(view.attempts, 1);
  });

  it('delivers the extra headers with the callback', async () => {
    const id = await harness.createTask({
      callbackUrl: receiver.url('/with-headers'),
      headers: { Authorization: 'Bearer app-token', 'X-Trace': 'abc' },
    });
    await harness.waitForEnd(id);
    const [call] = receiver.to('/with-headers');
    assert.equal(call!.headers.authorization, 'Bearer app-token');
    assert.equal(call!.headers['x-trace'], 'abc');
  });
});

describe('webhook delivery', () => {
  it('retries the webhook on its own schedule without changing the task status', async () => {
    const hook = '/hook-flaky';
    receiver.script(hook, respondJson(500, {}), respondJson(404, {}), respondJson(200, {}));
    const id = await harness.createTask({ callbackUrl: receiver.url('/ok-for-hook'), webhookUrl: receiver.url(hook) });
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'succeeded');
    assert.equal(view.webhook.status, 'delivered');
    assert.equal(view.webhook.attempts, 3);
    const deliveries = receiver.to(hook);
    assert.deepEqual(
      deliveries.map((delivery) => delivery.headers['asyncqueue-attempt']),
      ['1', '2', '3'],
    );
    assert.equal(new Set(deliveries.map((delivery) => delivery.headers['webhook-id'])).size, 1);
  });

  it('stops on 410 Gone and records the failure in the task view only', async () => {
    receiver.always('/hook-gone', respondJson(410, {}));
    const id = await harness.createTask({ callbackUrl: receiver.url('/ok-for-gone'), webhookUrl: receiver.url('/hook-gone') });
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'succeeded');
    assert.equal(view.webhook.status, 'failed');
    assert.equal(view.webhook.statusCode, 410);
    assert.equal(view.webhook.attempts, 1);
    assert.equal(receiver.to('/hook-gone').length, 1);
  });
});
