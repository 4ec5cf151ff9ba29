/**
 * `GET /v1/tasks/{id}/attempts` on a real Temporal server with real receivers: every callback and
 * webhook attempt with its answer, recorded in the task's history (a retried attempt by a signal,
 * the last one in its result or failure), so the list survives worker restarts and reads with no
 * worker running.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Receiver, respondJson, type Responder } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';
import { ATTEMPT_RECORDED_SIGNAL } from '../workflows/attempt-record.js';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { attemptsFromHistory } from '../src/api/tasks/attempt-history.js';
import { AsyncQueue } from '../src/client/index.js';
import { ExitCode, runCli } from '../src/cli/main.js';
import { DestinationGuard } from '../activities/destination-guard.js';
import { runEntry, type Started } from '../src/dev/entry-points.js';
import { TEST_SIGNING_SECRET, TEST_TASK_TOKEN_SECRET } from './support/harness.js';

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

const respondText =
  (status: number, body: string, headers: Record<string, string> = {}): Responder =>
  (_received, response) => {
    response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
    response.end(body);
  };

async function attempts(id: string): Promise<any[]> {
  const response = await harness.api('GET', `/v1/tasks/${id}/attempts`);
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return response.body.attempts as any[];
}

/** The records the history holds: signals, activity results, failure details. */
async function historyRecords(id: string): Promise<{ where: string; attempt: number; kind: string }[]> {
  const history = await harness.client.workflow.getHandle(`task-${id}`).fetchHistory();
  const { defaultPayloadConverter } = await import('@temporalio/common');
  const decode = (payload: unknown): any => (payload ? defaultPayloadConverter.fromPayload(payload as never) : undefined);
  const found: { where: string; attempt: number; kind: string }[] = [];
  for (const event of history.events ?? []) {
    const signal = event.workflowExecutionSignaledEventAttributes;
    if (signal?.signalName === ATTEMPT_RECORDED_SIGNAL) {
      const record = decode(signal.input?.payloads?.[0]);
      found.push({ where: 'signal', attempt: record.attempt, kind: record.kind });
    }
    const result = decode(event.activityTaskCompletedEventAttributes?.result?.payloads?.[0]);
    if (result?.record) found.push({ where: 'result', attempt: result.record.attempt, kind: result.record.kind });
    const failure = event.activityTaskFailedEventAttributes?.failure;
    const details = decode(failure?.applicationFailureInfo?.details?.payloads?.[0]);
    if (details?.record) found.push({ where: 'failure', attempt: details.record.attempt, kind: details.record.kind });
  }
  return found;
}

function assertTimes(attempt: any): void {
  assert.ok(!Number.isNaN(Date.parse(attempt.startedAt)), `startedAt of ${JSON.stringify(attempt)}`);
  assert.ok(!Number.isNaN(Date.parse(attempt.endedAt)), `endedAt of ${JSON.stringify(attempt)}`);
  assert.equal(typeof attempt.durationMs, 'number');
  assert.ok(attempt.durationMs >= 0);
}

describe('callback attempts', () => {
  it('records 503 (Retry-After, x-request-id), 500 (a body over 4 KiB, truncated) and 200 in order, each in the history', async () => {
    const big = `${'é'.repeat(3000)}tail`; // 6004 bytes of UTF-8: cut at a character boundary
    receiver.script(
      '/three',
      respondText(503, 'busy, come back', { 'retry-after': '1', 'x-request-id': 'req-1', 'x-other': 'not kept' }),
      respondText(500, big),
      respondJson(200, { done: true }, { 'x-request-id': 'req-3' }),
    );
    const id = await harness.createTask({ callbackUrl: receiver.url('/three'), retries: 3 });
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'succeeded');

    const list = await attempts(id);
    assert.deepEqual(
      list.map((a) => [a.kind, a.attempt, a.outcome, a.statusCode]),
      [
        ['callback', 1, 'failed', 503],
        ['callback', 2, 'failed', 500],
        ['callback', 3, 'succeeded', 200],
      ],
    );
    const [first, second, third] = list;
    for (const attempt of list) assertTimes(attempt);
    assert.ok(Date.parse(first.endedAt) <= Date.parse(second.startedAt));
    assert.ok(Date.parse(second.endedAt) <= Date.parse(third.startedAt));
    // Retry-After: 1 held the second attempt back a second.
    assert.ok(Date.parse(second.startedAt) - Date.parse(first.endedAt) >= 900);
    assert.deepEqual(first.error, { code: 'callback_http_status', message: 'callback answered 503' });
    assert.deepEqual(first.response, {
      headers: { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1', 'x-request-id': 'req-1' },
      body: 'busy, come back',
      truncated: false,
    });
    assert.equal(second.response.truncated, true);
    assert.equal(second.response.body, 'é'.repeat(2048));
    assert.equal(Buffer.byteLength(second.response.body), 4096);
    assert.equal(third.error, undefined);
    assert.deepEqual(third.response, {
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-3' },
      body: '{"done":true}',
      truncated: false,
    });

    // What the Temporal UI shows: the retried attempts as signals, the last one in its result.
    assert.deepEqual(await historyRecords(id), [
      { where: 'signal', attempt: 1, kind: 'callback' },
      { where: 'signal', attempt: 2, kind: 'callback' },
      { where: 'result', attempt: 3, kind: 'callback' },
    ]);
  });

  it('records a timed-out attempt as timeout, the retried one by signal and the last in its failure', async () => {
    receiver.always('/silent', () => undefined);
    const id = await harness.createTask({ callbackUrl: receiver.url('/silent'), retries: 1, timeout: 1 });
    const view = await harness.waitForEnd(id, { timeoutMs: 30_000 });
    assert.equal(view.status, 'failed');
    const list = await attempts(id);
    assert.deepEqual(
      list.map((a) => [a.attempt, a.outcome, a.error?.code, a.statusCode]),
      [
        [1, 'timeout', 'callback_timeout', undefined],
        [2, 'timeout', 'callback_timeout', undefined],
      ],
    );
    for (const attempt of list) {
      assertTimes(attempt);
      assert.ok(attempt.durationMs >= 900, `durationMs ${attempt.durationMs}`);
      assert.equal(attempt.response, undefined);
    }
    assert.deepEqual(await historyRecords(id), [
      { where: 'signal', attempt: 1, kind: 'callback' },
      { where: 'failure', attempt: 2, kind: 'callback' },
    ]);
  });

  it('keeps attempt records across a worker restart, and reads them with no worker running', async () => {
    receiver.script('/restart', respondText(500, 'first fails', { 'retry-after': '3' }), respondJson(200, { second: 'ok' }));
    const id = await harness.createTask({ callbackUrl: receiver.url('/restart'), retries: 2 });
    await receiver.waitFor('/restart', 1);
    // Attempt 1 has failed and recorded itself (Retry-After holds attempt 2 back 3 s).
    await eventually(async () => ((await historyRecords(id)).length === 1 ? true : undefined), {
      what: 'attempt 1 recorded',
    });
    await harness.stopWorker();
    try {
      const whileStopped = await attempts(id);
      assert.deepEqual(
        whileStopped.map((a) => [a.attempt, a.outcome, a.statusCode]),
        [[1, 'failed', 500]],
      );
    } finally {
      await harness.startWorker();
    }
    const view = await harness.waitForEnd(id);
    assert.equal(view.status, 'succeeded');
    assert.equal(receiver.to('/restart').length, 2);

    await harness.stopWorker();
    try {
      const list = await attempts(id);
      assert.deepEqual(
        list.map((a) => [a.attempt, a.outcome, a.statusCode, a.response?.body]),
        [
          [1, 'failed', 500, 'first fails'],
          [2, 'succeeded', 200, '{"second":"ok"}'],
        ],
      );
    } finally {
      await harness.startWorker();
    }
  });

  it('shows the running attempt as in_progress, and a call cut off by a cancel as cancelled', async () => {
    receiver.always('/hold', () => undefined);
    const id = await harness.createTask({ callbackUrl: receiver.url('/hold'), timeout: 60 });
    await receiver.waitFor('/hold', 1);
    const running = await eventually(
      async () => {
        const list = await attempts(id);
        return list[0]?.outcome === 'in_progress' ? list : undefined;
      },
      { what: 'the attempt in progress' },
    );
    assert.equal(running.length, 1);
    assert.ok(!Number.isNaN(Date.parse(running[0].startedAt)));
    assert.equal(running[0].endedAt, null);
    assert.equal(running[0].durationMs, null);

    assert.equal((await harness.api('POST', `/v1/tasks/${id}/cancel`, {})).status, 202);
    assert.equal((await harness.waitForEnd(id)).status, 'cancelled');
    const list = await attempts(id);
    assert.deepEqual(
      list.map((a) => [a.attempt, a.outcome, a.error?.code]),
      [[1, 'cancelled', 'cancelled']],
    );
    assertTimes(list[0]);
  });

  it('reads through the SDK (aq.tasks.attempts) and the CLI (asyncqueue tasks attempts ID, a table)', async () => {
    receiver.script('/sdk', respondText(502, 'bad gateway'), respondJson(200, { fine: true }));
    const id = await harness.createTask({ callbackUrl: receiver.url('/sdk') });
    await harness.waitForEnd(id);
    const aq = new AsyncQueue({ baseUrl: harness.baseUrl });
    const list = await aq.tasks.attempts(id);
    assert.deepEqual(
      list.map((a) => [a.attempt, a.outcome, a.statusCode]),
      [
        [1, 'failed', 502],
        [2, 'succeeded', 200],
      ],
    );
    const lines: string[] = [];
    const output = { write: (text: string) => lines.push(text), error: (text: string) => lines.push(text) };
    assert.equal(await runCli(['tasks', 'attempts', id, '--url', harness.baseUrl], {}, output), ExitCode.Ok);
    const table = lines.join('\n').split('\n');
    assert.match(table[0]!, /^KIND\s+ATTEMPT\s+OUTCOME\s+STATUS\s+STARTED\s+DURATION\s+ERROR$/);
    assert.match(table[1]!, /^callback\s+1\s+failed\s+502\s+\S+Z\s+\d+ ms\s+callback_http_status: callback answered 502$/);
    assert.match(table[2]!, /^callback\s+2\s+succeeded\s+200\s+\S+Z\s+\d+ ms$/);
    lines.length = 0;
    assert.equal(await runCli(['tasks', 'attempts', id, '--json', '--url', harness.baseUrl], {}, output), ExitCode.Ok);
    assert.deepEqual(JSON.parse(lines[0]!), { attempts: list });
  });

  it('answers 404 for an unknown task', async () => {
    const response = await harness.api('GET', '/v1/tasks/no-such-task/attempts');
    assert.equal(response.status, 404);
    assert.equal(response.body.error.code, 'task_not_found');
  });
});

describe('async completion attempts', () => {
  it('shows an accepted attempt as awaiting_completion, then as the outcome /fail and /complete gave it', async () => {
    const acceptAsync = respondJson(202, { queued: true }, { 'asyncqueue-completion': 'async' });
    receiver.script('/async', acceptAsync, acceptAsync);
    const id = await harness.createTask({ callbackUrl: receiver.url('/async'), retries: 2, timeout: 60 });
    const [call] = await receiver.waitFor('/async', 1);
    const token = { 'asyncqueue-task-token': String(call!.headers['asyncqueue-task-token']) };
    const awaiting = await eventually(
      async () => {
        const list = await attempts(id);
        return list[0]?.outcome === 'awaiting_completion' ? list : undefined;
      },
      { what: 'the attempt awaiting completion' },
    );
    assert.equal(awaiting[0].statusCode, 202);
    assert.equal(awaiting[0].endedAt, null);
    assert.equal(awaiting[0].response.body, '{"queued":true}');

    const fail = { error: { message: 'renderer crashed', code: 'renderer_crashed' }, retryable: true };
    assert.equal((await harness.api('POST', `/v1/tasks/${id}/fail`, fail, token)).status, 202);
    await receiver.waitFor('/async', 2);
    await eventually(
      async () => {
        const response = await harness.api('POST', `/v1/tasks/${id}/complete`, { result: { pages: 3 } }, token);
        return response.status === 202 ? true : undefined;
      },
      { what: 'the second attempt completed' },
    );
    const view = await harness.waitForEnd(id);
    assert.deepEqual(view.result, { pages: 3 });
    const list = await attempts(id);
    assert.deepEqual(
      list.map((a) => [a.attempt, a.outcome, a.statusCode, a.error?.code]),
      [
        [1, 'failed', 202, 'renderer_crashed'],
        [2, 'succeeded', 202, undefined],
      ],
    );
    for (const attempt of list) assertTimes(attempt);
    assert.equal(list[0].error.message, 'renderer crashed');
  });
});

describe('webhook attempts', () => {
  it('lists webhook attempts after the callback attempts', async () => {
    receiver.script('/hook-flaky', respondText(500, 'hook down', { 'x-request-id': 'h-1' }), respondText(200, 'thanks'));
    const id = await harness.createTask({ callbackUrl: receiver.url('/ok'), webhookUrl: receiver.url('/hook-flaky') });
    const view = await harness.waitForEnd(id);
    assert.equal(view.webhook.status, 'delivered');
    const list = await attempts(id);
    assert.deepEqual(
      list.map((a) => [a.kind, a.attempt, a.outcome, a.statusCode, a.response?.body]),
      [
        ['callback', 1, 'succeeded', 200, '{"ok":true}'],
        ['webhook', 1, 'failed', 500, 'hook down'],
        ['webhook', 2, 'succeeded', 200, 'thanks'],
      ],
    );
    assert.equal(list[1].response.headers['x-request-id'], 'h-1');
    assert.equal(list[1].error.code, 'webhook_http_status');
    for (const attempt of list) assertTimes(attempt);
    assert.deepEqual(await historyRecords(id), [
      { where: 'result', attempt: 1, kind: 'callback' },
      { where: 'signal', attempt: 1, kind: 'webhook' },
      { where: 'result', attempt: 2, kind: 'webhook' },
    ]);
  });
});

describe('histories recorded before attempt records', () => {
  const HISTORIES = fileURLToPath(new URL('../../test/histories/', import.meta.url));
  const read = async (name: string) => {
    const history = historyFromJSON(JSON.parse(await readFile(`${HISTORIES}${name}.json`, 'utf8')));
    return attemptsFromHistory(history.events ?? [], []).map((a) => [a.kind, a.attempt, a.outcome, a.statusCode, a.error?.code]);
  };

  it('read from what their events say: results, final failures, the last failure Temporal kept', async () => {
    assert.deepEqual(await read('v4-succeeded-after-retry-with-webhook-retry'), [
      ['callback', 1, 'failed', 503, 'callback_http_status'],
      ['callback', 2, 'succeeded', 200, undefined],
      ['webhook', 1, 'failed', 500, 'webhook_http_status'],
      ['webhook', 2, 'succeeded', 200, undefined],
    ]);
    assert.deepEqual(await read('v1-failed-after-retries-with-webhook'), [
      ['callback', 1, 'failed', 500, 'callback_http_status'],
      ['callback', 2, 'failed', 500, 'callback_http_status'],
      ['webhook', 1, 'succeeded', 200, undefined],
    ]);
    assert.deepEqual(await read('v4-cancelled-in-flight'), [
      ['callback', 1, 'cancelled', undefined, 'cancelled'],
      ['webhook', 1, 'succeeded', 200, undefined],
    ]);
    assert.deepEqual(await read('v4-async-failed-then-retried'), [
      ['callback', 1, 'failed', 202, 'callback_reported_failure'],
      ['callback', 2, 'succeeded', 200, undefined],
    ]);
  });
});

describe('a bounded history', () => {
  // 20 by default: the dev server spaces retries about a second apart whatever the interval. The
  // README's figure for 100: ASYNCQUEUE_TEST_HISTORY_RETRIES=100 (about 100 s).
  const retries = Number(process.env.ASYNCQUEUE_TEST_HISTORY_RETRIES ?? 20);
  it(`keeps ${retries} retries with 4 KiB bodies far inside Temporal's limits (51,200 events, 50 MB)`, async () => {
    const fast = await startHarness({
      env: { ASYNCQUEUE_RETRY_INITIAL_INTERVAL: '0.05', ASYNCQUEUE_RETRY_MAX_INTERVAL: '0.05' },
    });
    try {
      receiver.always('/always-503', respondText(503, 'x'.repeat(8192), { 'x-request-id': 'r'.repeat(64) }));
      const id = await fast.createTask({ callbackUrl: receiver.url('/always-503'), retries });
      const view = await fast.waitForEnd(id, { timeoutMs: 180_000 });
      assert.equal(view.status, 'failed');
      assert.equal(view.attempts, retries + 1);
      const list = (await fast.api('GET', `/v1/tasks/${id}/attempts`)).body.attempts as any[];
      assert.equal(list.length, retries + 1);
      assert.ok(list.every((a, i) => a.attempt === i + 1 && a.outcome === 'failed' && a.response.truncated));
      const history = await fast.client.workflow.getHandle(`task-${id}`).fetchHistory();
      const { temporal } = (await import('@temporalio/proto')).default;
      const bytes = temporal.api.history.v1.History.encode(history).finish().length;
      const events = history.events?.length ?? 0;
      process.stdout.write(`# ${retries} retries with 8 KiB answers: ${events} events, ${bytes} bytes of history\n`);
      // Per attempt: a signal and its workflow task (4 events), one record of at most ~5.3 KiB.
      assert.ok(events <= 20 + 4 * (retries + 1), `${events} events`);
      assert.ok(bytes <= 16 * 1024 + 5.5 * 1024 * (retries + 1), `${bytes} bytes`);
    } finally {
      await fast.close();
    }
  });
});

describe('attempts that end without an answer', () => {
  it('records a worker killed mid-attempt as timeout (heartbeat_timeout), and the attempt after it', async () => {
    const local = await startHarness({ withoutWorker: true, env: { ASYNCQUEUE_HEARTBEAT_TIMEOUT: '1' } });
    let worker: Started | undefined;
    try {
      receiver.script('/crash', () => undefined, respondJson(200, { after: 'crash' }));
      worker = runEntry('worker-main', {
        TEMPORAL_ADDRESS: local.config.temporalAddress!,
        ASYNCQUEUE_TASK_QUEUE: local.config.taskQueue,
        ASYNCQUEUE_SIGNING_SECRET: TEST_SIGNING_SECRET,
        ASYNCQUEUE_TASK_TOKEN_SECRET: TEST_TASK_TOKEN_SECRET,
        ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'true',
        ASYNCQUEUE_DATA_DIR: local.config.dataDir,
        LOG_LEVEL: 'warn',
      });
      const id = await local.createTask({ callbackUrl: receiver.url('/crash'), retries: 2, timeout: 60 });
      await receiver.waitFor('/crash', 1, 60_000);
      await worker.stop('SIGKILL'); // a crash: nothing is recorded by the worker
      worker = undefined;
      await local.startWorker();
      const view = await local.waitForEnd(id, { timeoutMs: 60_000 });
      assert.equal(view.status, 'succeeded');
      const list = (await local.api('GET', `/v1/tasks/${id}/attempts`)).body.attempts as any[];
      assert.deepEqual(
        list.map((a) => [a.attempt, a.outcome, a.error?.code, a.statusCode]),
        [
          [1, 'timeout', 'heartbeat_timeout', undefined],
          [2, 'succeeded', undefined, 200],
        ],
      );
      assertTimes(list[1]);
    } finally {
      await worker?.stop('SIGKILL');
      await local.close();
    }
  });

  it('records an attempt its stopping worker cut off (a deploy) as failed, worker_shutdown, with its times', async () => {
    receiver.script('/deploy', () => undefined, respondJson(200, { after: 'deploy' }));
    const id = await harness.createTask({ callbackUrl: receiver.url('/deploy'), retries: 2, timeout: 60 });
    await receiver.waitFor('/deploy', 1);
    await harness.stopWorker(); // graceful: the held call is cut off after the grace time (1 s)
    await harness.startWorker();
    assert.equal((await harness.waitForEnd(id, { timeoutMs: 60_000 })).status, 'succeeded');
    const list = await attempts(id);
    assert.deepEqual(
      list.map((a) => [a.attempt, a.outcome, a.error?.code, a.statusCode]),
      [
        [1, 'failed', 'worker_shutdown', undefined],
        [2, 'succeeded', undefined, 200],
      ],
    );
    for (const attempt of list) assertTimes(attempt);
    assert.deepEqual(await historyRecords(id), [
      { where: 'signal', attempt: 1, kind: 'callback' },
      { where: 'result', attempt: 2, kind: 'callback' },
    ]);
  });

  it('records an address the destination guard refuses at connect time as blocked', async () => {
    // The name does not resolve when the task is created (allowed: it may exist later), and
    // resolves to loopback when the worker connects: the guard refuses it then.
    let lookups = 0;
    const guard = new DestinationGuard({
      allowPrivateNetworks: false,
      allowedDestinations: [],
      resolve: async (hostname) => {
        if (lookups++ === 0) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
        return [{ address: '127.0.0.1', family: 4 }];
      },
    });
    const guarded = await startHarness({ guard });
    try {
      const id = await guarded.createTask({ callbackUrl: 'http://rebinding.example/x', retries: 3 });
      const view = await guarded.waitForEnd(id);
      assert.equal(view.status, 'failed');
      const list = (await guarded.api('GET', `/v1/tasks/${id}/attempts`)).body.attempts as any[];
      assert.deepEqual(
        list.map((a) => [a.attempt, a.outcome, a.error?.code]),
        [[1, 'blocked', 'destination_blocked']],
      );
      assertTimes(list[0]);
    } finally {
      await guarded.close();
    }
  });
});
