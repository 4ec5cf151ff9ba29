/**
 * The client SDK, the receiver helpers and the CLI, against the running service: the seed's code
 * as written, typed errors, retries only where safe, signature verification on the receiving side.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  AsyncQueue,
  AsyncQueueApiError,
  AsyncQueueConnectionError,
  SignatureVerificationError,
  WaitTimeoutError,
  expressReceiver,
  verifyRequest,
  type Task,
  type TaskEvent,
} from '../src/client/index.js';
import { fastifyReceiver } from '../src/client/fastify.js';
import { ExitCode, runCli } from '../src/cli/main.js';
import { Receiver, respondJson } from './support/receiver.js';
import { TEST_SIGNING_SECRET, startHarness, stopOwnServer, type Harness } from './support/harness.js';
import { terminateRunning } from './support/cleanup.js';
import { eventually } from './support/eventually.js';

const API_KEY = 'client-test-key-0123456789';
let harness: Harness;
let receiver: Receiver;
let aq: AsyncQueue;

before(async () => {
  harness = await startHarness({ env: { ASYNCQUEUE_API_KEYS: API_KEY } });
  receiver = await Receiver.start();
  aq = new AsyncQueue({ baseUrl: harness.baseUrl, apiKey: API_KEY });
});

after(async () => {
  await terminateRunning(harness); // the delayed tasks the wait-timeout checks leave
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

describe('client SDK', () => {
  it("runs the seed's code as written", async () => {
    receiver.script('/api/run-report', respondJson(200, { jobId: 'job-7', reportUrl: 'https://files/7.pdf', pageCount: 3 }));
    const jobId = 'job-7';
    const created = await aq.tasks.create({
      callbackUrl: receiver.url('/api/run-report'),
      payload: { jobId, dateRange: { from: '2026-01-01', to: '2026-01-31' }, format: 'pdf' },
      webhookUrl: receiver.url('/api/on-report-ready'),
      retries: 3,
      timeout: 120,
    });
    assert.equal(created.status, 'pending');
    const task = await aq.tasks.wait(created.id, { timeoutMs: 20_000, intervalMs: 100 });
    assert.equal(task.status, 'succeeded');
    assert.deepEqual(task.result, { jobId: 'job-7', reportUrl: 'https://files/7.pdf', pageCount: 3 });
    assert.equal((await aq.tasks.get(created.id)).id, created.id);
  });

  it('lists one page, or iterates over every page', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) ids.add((await aq.tasks.create({ callbackUrl: receiver.url('/listed') })).id);
    const page = await aq.tasks.list({ limit: 1 });
    assert.equal(page.tasks.length, 1);
    assert.ok(page.nextCursor);
    // Every page, one task each, until this test's three came by (other files fill the namespace
    // too). Visibility lists a new task a moment after its start (the cluster's PostgreSQL and a
    // loaded dev server both lag): iterate again until it has caught up.
    const seen = await eventually(
      async () => {
        const found = new Set<string>();
        for await (const task of aq.tasks.list({ limit: 1 })) {
          found.add(task.id);
          if ([...ids].every((id) => found.has(id))) return found;
        }
        return undefined;
      },
      { timeoutMs: 20_000, what: 'the three tasks to be listed' },
    );
    for (const id of ids) assert.ok(seen.has(id), `${id} was iterated`);
  });

  it('cancels, and reports errors as typed errors with status and code', async () => {
    receiver.always('/hold-for-client', () => undefined);
    const { id } = await aq.tasks.create({ callbackUrl: receiver.url('/hold-for-client'), timeout: 60 });
    await receiver.waitFor('/hold-for-client', 1);
    await aq.tasks.cancel(id, { reason: 'from the SDK' });
    const cancelled = await aq.tasks.wait(id, { timeoutMs: 20_000, intervalMs: 100 });
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(cancelled.error?.message, 'from the SDK');

    const conflict = await aq.tasks.cancel(id).catch((err: unknown) => err);
    assert.ok(conflict instanceof AsyncQueueApiError);
    assert.equal(conflict.status, 409);
    assert.equal(conflict.code, 'task_already_ended');

    const missing = await aq.tasks.get('00000000-0000-4000-8000-000000000000').catch((err: unknown) => err);
    assert.ok(missing instanceof AsyncQueueApiError && missing.status === 404 && missing.code === 'task_not_found');
    const invalid = await aq.tasks.create({ callbackUrl: receiver.url('/x'), retries: 1000 }).catch((err: unknown) => err);
    assert.ok(invalid instanceof AsyncQueueApiError && invalid.status === 400 && invalid.code === 'invalid_request');
    assert.match(invalid.message, /^retries:/);
    const unauthorized = await new AsyncQueue({ baseUrl: harness.baseUrl, apiKey: 'wrong' }).tasks.list().then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(unauthorized instanceof AsyncQueueApiError && unauthorized.status === 401);

    const timedOut = await aq.tasks
      .wait((await aq.tasks.create({ callbackUrl: receiver.url('/x'), delay: 600 })).id, { timeoutMs: 300, intervalMs: 100 })
      .catch((err: unknown) => err);
    assert.ok(timedOut instanceof WaitTimeoutError && timedOut.lastStatus === 'scheduled');
  });

  it('retries a create only when it carries an idempotency key', async () => {
    let calls = 0;
    // The first POST dies on the wire after the server may have seen it: only a key makes a retry safe.
    const flaky: typeof fetch = async (input, init) => {
      calls++;
      if (init?.method === 'POST' && calls === 1) {
        await fetch(input, init);
        throw new TypeError('fetch failed: connection reset');
      }
      return fetch(input, init);
    };
    const client = new AsyncQueue({ baseUrl: harness.baseUrl, apiKey: API_KEY, fetch: flaky });
    const created = await client.tasks.create(
      { callbackUrl: receiver.url('/retried-create') },
      { idempotencyKey: 'sdk-retry-1' },
    );
    assert.equal(calls, 2);
    const again = await aq.tasks.create({ callbackUrl: receiver.url('/retried-create') }, { idempotencyKey: 'sdk-retry-1' });
    assert.equal(again.id, created.id, 'the lost first request and the retry made one task');

    calls = 0;
    const unkeyed = await client.tasks.create({ callbackUrl: receiver.url('/unkeyed') }).catch((err: unknown) => err);
    assert.ok(unkeyed instanceof AsyncQueueConnectionError);
    assert.equal(calls, 1, 'no retry without a key');
  });
});

describe('client retries', () => {
  /** A fetch that answers from a script (then 200) and counts the calls. */
  function scripted(answers: Array<number | 'network' | { status: number; retryAfter: string }>) {
    let calls = 0;
    const fetch = (async () => {
      const next = answers[calls++];
      if (next === 'network') throw new TypeError('fetch failed');
      const { status, retryAfter } = typeof next === 'object' ? next : { status: next ?? 200, retryAfter: undefined };
      const body = status === 200 ? { id: 't', status: 'succeeded' } : { error: { code: `code_${status}`, message: 'x' } };
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
      return new Response(JSON.stringify(body), { status, headers });
    }) as typeof globalThis.fetch;
    return { fetch, calls: () => calls };
  }
  const sdk = (fetch: typeof globalThis.fetch, maxRetries?: number) =>
    new AsyncQueue({ baseUrl: 'http://127.0.0.1:1', fetch, ...(maxRetries !== undefined ? { maxRetries } : {}) });

  it('retries network errors, 429 and 503 with backoff, and stops after maxRetries', async () => {
    const flaky = scripted(['network', 429, 503]);
    const startedAt = Date.now();
    assert.equal((await sdk(flaky.fetch).tasks.get('t')).status, 'succeeded');
    assert.equal(flaky.calls(), 4);
    assert.ok(Date.now() - startedAt >= 250 + 500 + 1000, 'exponential backoff between the attempts');

    const down = scripted([503, 503, 503]);
    const failed = await sdk(down.fetch, 2)
      .tasks.get('t')
      .catch((err: unknown) => err);
    assert.ok(failed instanceof AsyncQueueApiError && failed.status === 503);
    assert.equal(down.calls(), 3, 'maxRetries 2: three attempts');

    const once = scripted([503]);
    await assert.rejects(sdk(once.fetch, 0).tasks.get('t'), AsyncQueueApiError);
    assert.equal(once.calls(), 1);
  });

  it('does not retry other errors', async () => {
    for (const status of [400, 404, 409, 500]) {
      const answer = scripted([status]);
      await assert.rejects(
        sdk(answer.fetch).tasks.get('t'),
        (err: unknown) => err instanceof AsyncQueueApiError && err.status === status,
      );
      assert.equal(answer.calls(), 1, String(status));
    }
  });

  it('waits what Retry-After asks instead of the backoff, and counts those attempts too', async () => {
    const asked = scripted([
      { status: 503, retryAfter: '0' },
      { status: 429, retryAfter: '0' },
      { status: 503, retryAfter: '0' },
    ]);
    const startedAt = Date.now();
    assert.equal((await sdk(asked.fetch).tasks.get('t')).status, 'succeeded');
    assert.equal(asked.calls(), 4);
    assert.ok(Date.now() - startedAt < 250, 'no backoff on top of Retry-After: 0');

    const always = scripted(Array.from({ length: 10 }, () => ({ status: 503, retryAfter: '0' })));
    await assert.rejects(sdk(always.fetch).tasks.get('t'), AsyncQueueApiError);
    assert.equal(always.calls(), 4, 'Retry-After does not add attempts');

    const second = scripted([{ status: 503, retryAfter: '1' }]);
    const before = Date.now();
    await sdk(second.fetch).tasks.get('t');
    assert.ok(Date.now() - before >= 990, 'Retry-After: 1 waits a second');
  });
});

describe('receiver helpers', () => {
  let app: FastifyInstance;
  const received: Array<{ body: unknown; messageId: string | undefined }> = [];

  before(async () => {
    app = Fastify();
    await app.register(async (scope) => {
      await scope.register(
        fastifyReceiver({ secret: ['whsec_b2xkLW9sZC1vbGQtb2xkLXNlY3JldC0xMjM0NTY3OA==', TEST_SIGNING_SECRET] }),
      );
      scope.post('/api/on-report-ready', async (request) => {
        received.push({ body: request.body, messageId: request.asyncQueue?.messageId });
        return { received: true };
      });
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(() => app.close());

  it('fastifyReceiver verifies the raw body and hands the handler the parsed event', async () => {
    const { port } = app.server.address() as AddressInfo;
    const { id } = await aq.tasks.create({
      callbackUrl: receiver.url('/for-receiver'),
      webhookUrl: `http://127.0.0.1:${port}/api/on-report-ready`,
    });
    await aq.tasks.wait(id, { timeoutMs: 20_000, intervalMs: 100 });
    const delivered = await eventually(async () => received[0], { what: 'the webhook at the Fastify receiver' });
    assert.equal((delivered.body as TaskEvent).taskId, id);
    assert.equal((delivered.body as TaskEvent).type, 'task.succeeded');
    assert.equal(delivered.messageId, `msg_${id}_webhook`);

    const forged = await fetch(`http://127.0.0.1:${port}/api/on-report-ready`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': 'msg_forged',
        'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
        'webhook-signature': 'v1,Zm9yZ2VkLXNpZ25hdHVyZS1mb3JnZWQtc2lnbmF0dXJlLTEyMw==',
      },
      body: JSON.stringify({ type: 'task.succeeded', taskId: 'forged' }),
    });
    assert.equal(forged.status, 401);
    assert.equal(received.length, 1);
  });

  it('verifyRequest accepts what AsyncQueue sent and refuses a changed byte', async () => {
    const [call] = receiver.to('/for-receiver');
    assert.ok(call);
    const verified = verifyRequest<Record<string, unknown>>(TEST_SIGNING_SECRET, call.body, call.headers);
    assert.deepEqual(verified.body, JSON.parse(call.body));
    assert.equal(verified.attempt, 1);
    assert.throws(() => verifyRequest(TEST_SIGNING_SECRET, `${call.body} `, call.headers), SignatureVerificationError);
  });

  it('expressReceiver does the same for Express-style middleware', async () => {
    const middleware = expressReceiver({ secret: TEST_SIGNING_SECRET });
    const server = createServer((request: IncomingMessage, response: ServerResponse) => {
      const res = {
        status: (code: number) => ({ json: (body: unknown) => response.writeHead(code).end(JSON.stringify(body)) }),
      };
      const req = request as IncomingMessage & { body?: unknown };
      middleware(req, res, (err?: unknown) => {
        response.writeHead(err ? 500 : 200).end(JSON.stringify({ event: req.body }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const [call] = receiver.to('/for-receiver');
      const forward = (body: string) =>
        fetch(`http://127.0.0.1:${port}/`, {
          method: 'POST',
          headers: Object.fromEntries(
            Object.entries(call!.headers).filter(([name]) => name.startsWith('webhook-') || name.startsWith('asyncqueue-')),
          ) as Record<string, string>,
          body,
        });
      const ok = await forward(call!.body);
      assert.equal(ok.status, 200);
      assert.deepEqual(((await ok.json()) as { event: unknown }).event, JSON.parse(call!.body));
      assert.equal((await forward(call!.body.replace('}', ',"x":1}'))).status, 401);
    } finally {
      server.close();
    }
  });
});

describe('command line', () => {
  async function cli(...args: string[]) {
    const lines: string[] = [];
    const errors: string[] = [];
    const code = await runCli(
      args,
      { ASYNCQUEUE_URL: harness.baseUrl, ASYNCQUEUE_API_KEY: API_KEY },
      {
        write: (text) => lines.push(text),
        error: (text) => errors.push(text),
      },
    );
    return { code, stdout: lines.join('\n'), stderr: errors.join('\n') };
  }

  it('creates, reads, lists, waits and cancels, with exit codes scripts can rely on', async () => {
    receiver.always('/cli-fail', respondJson(422, { error: 'no' }));
    const created = await cli(
      'tasks',
      'create',
      '--callback-url',
      receiver.url('/cli-ok'),
      '--payload',
      '{"n":1}',
      '--header',
      'X-From: cli',
      '--json',
    );
    assert.equal(created.code, ExitCode.Ok, created.stderr);
    const { id } = JSON.parse(created.stdout) as { id: string };
    const waited = await cli('tasks', 'wait', id, '--interval', '0.1', '--json');
    assert.equal(waited.code, ExitCode.Ok);
    assert.equal((JSON.parse(waited.stdout) as Task).status, 'succeeded');
    assert.equal(receiver.to('/cli-ok')[0]!.headers['x-from'], 'cli');

    const human = await cli('tasks', 'get', id);
    assert.match(human.stdout, /^id: +[0-9a-f-]+\nstatus: +succeeded/m);
    const listed = await cli('tasks', 'list', '--status', 'succeeded', '--limit', '5', '--json');
    assert.ok((JSON.parse(listed.stdout) as { tasks: Task[] }).tasks.length > 0);

    const failing = JSON.parse((await cli('tasks', 'create', '--callback-url', receiver.url('/cli-fail'), '--json')).stdout) as {
      id: string;
    };
    assert.equal((await cli('tasks', 'wait', failing.id, '--interval', '0.1')).code, ExitCode.TaskFailed);

    const later = JSON.parse(
      (await cli('tasks', 'create', '--callback-url', receiver.url('/cli-later'), '--delay', '600', '--json')).stdout,
    ) as { id: string };
    assert.equal(
      (await cli('tasks', 'wait', later.id, '--wait-timeout', '0.3', '--interval', '0.1')).code,
      ExitCode.WaitTimedOut,
    );
    assert.equal((await cli('tasks', 'cancel', later.id, '--reason', 'cli')).code, ExitCode.Ok);
    assert.equal((await cli('tasks', 'wait', later.id, '--interval', '0.1')).code, ExitCode.TaskCancelled);

    const missing = await cli('tasks', 'get', '00000000-0000-4000-8000-000000000000', '--json');
    assert.equal(missing.code, ExitCode.Failed);
    assert.equal((JSON.parse(missing.stderr) as { error: { code: string } }).error.code, 'task_not_found');
    assert.equal((await cli('tasks', 'create')).code, ExitCode.Usage);
    assert.equal((await cli('tasks', 'explode')).code, ExitCode.Usage);
    assert.equal((await cli('tasks', 'create', '--callback-url', 'x', '--payload', '{nope')).code, ExitCode.Usage);
  });
});
