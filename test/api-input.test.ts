/**
 * The API's edge: authentication, validation that names the field, destination checks, the error
 * shape, health endpoints — and that nothing a rejected request asked for was started.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { buildApp } from '../src/api/app.js';
import { startHarness, stopOwnServer, temporalAddress, type Harness } from './support/harness.js';
import { terminateRunning, visibilityCaughtUp } from './support/cleanup.js';

const KEYS = ['first-key-0123456789', 'second-key-9876543210'];
let harness: Harness;

before(async () => {
  harness = await startHarness({
    env: {
      ASYNCQUEUE_API_KEYS: KEYS.join(','),
      ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'false',
      ASYNCQUEUE_BODY_LIMIT_BYTES: '4096',
      ASYNCQUEUE_QUERY_TIMEOUT: '0.5',
    },
    withoutWorker: true,
  });
});

after(async () => {
  await terminateRunning(harness); // no worker: what this file started would run for ever
  await harness.close();
  await stopOwnServer();
});

const auth = (key = KEYS[0]!) => ({ authorization: `Bearer ${key}` });
const valid = { callbackUrl: 'https://app.example.com/api/run-report', payload: { jobId: 'j1' } };

async function rejected(body: unknown, field: string, status = 400) {
  const response = await harness.api('POST', '/v1/tasks', body, auth());
  assert.equal(response.status, status, `${JSON.stringify(body)} → ${JSON.stringify(response.body)}`);
  assert.equal(typeof response.body.error.code, 'string');
  assert.ok(response.body.error.message.startsWith(`${field}:`), `message should name ${field}: ${response.body.error.message}`);
}

/** Workflows started on this file's task queue, counted once visibility has caught up with now. */
async function workflowsStarted(): Promise<number> {
  await visibilityCaughtUp(harness);
  const { count } = await harness.client.workflow.count(`TaskQueue = '${harness.config.taskQueue}'`);
  return count;
}

describe('authentication', () => {
  it('refuses requests without a valid key, with the error shape', async () => {
    for (const headers of [{}, auth('wrong-key'), { authorization: 'Basic Zm9vOmJhcg==' }, { authorization: 'Bearer' }]) {
      const response = await harness.api('GET', '/v1/tasks', undefined, headers);
      assert.equal(response.status, 401);
      assert.equal(response.body.error.code, 'unauthorized');
    }
    const create = await harness.api('POST', '/v1/tasks', valid);
    assert.equal(create.status, 401);
  });

  it('accepts every configured key (rotation), and health checks need none', async () => {
    for (const key of KEYS) assert.equal((await harness.api('GET', '/v1/tasks', undefined, auth(key))).status, 200);
    assert.deepEqual((await harness.api('GET', '/healthz')).body, { status: 'ok' });
    const ready = await harness.api('GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.status, 'ready');
  });
});

describe('validation', () => {
  it('names the field for every kind of bad input', async () => {
    await rejected({}, 'callbackUrl');
    await rejected({ ...valid, callbackUrl: 'not a url' }, 'callbackUrl');
    await rejected({ ...valid, callbackUrl: 'ftp://app.example.com/x' }, 'callbackUrl');
    await rejected({ ...valid, callbackUrl: 'https://user:secret@app.example.com/x' }, 'callbackUrl');
    await rejected({ ...valid, callbackUrl: 'https://app.example.com/x#frag' }, 'callbackUrl');
    await rejected({ ...valid, callbackUrl: `https://${'a'.repeat(250)}.example.com/` }, 'callbackUrl');
    await rejected({ ...valid, callbackUrl: 42 }, 'callbackUrl');
    await rejected({ ...valid, webhookUrl: 'javascript:alert(1)' }, 'webhookUrl');
    for (const retries of [-1, 101, 1.5, '3', null, 1e9]) await rejected({ ...valid, retries }, 'retries');
    for (const timeout of [0, 86_401, 2.5, 'x', -5]) await rejected({ ...valid, timeout }, 'timeout');
    for (const delay of [-1, 0.5, 1e12, true]) await rejected({ ...valid, delay }, 'delay');
    await rejected({ ...valid, headers: { 'x-ok': 'a\r\nInjected: 1' } }, 'headers.x-ok');
    await rejected({ ...valid, headers: { 'bad name': 'x' } }, 'headers.bad name');
    await rejected({ ...valid, headers: { 'x-name': 'Zoë' } }, 'headers.x-name');
    for (const name of [
      'Host',
      'content-length',
      'Content-Encoding',
      'Webhook-Signature',
      'AsyncQueue-Attempt',
      'Transfer-Encoding',
      'Connection',
    ]) {
      await rejected({ ...valid, headers: { [name]: 'x' } }, `headers.${name}`);
    }
    await rejected({ ...valid, headers: { 'x-n': 1 } }, 'headers.x-n');
    await rejected({ ...valid, callbackURL: 'https://typo.example.com/' }, 'callbackURL');
    await rejected([valid], 'body');
    await rejected('"just a string"', 'body');
  });

  it('answers 400 for broken JSON, 413 over the body limit and 415 for other media types', async () => {
    const broken = await fetch(`${harness.baseUrl}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth() },
      body: '{"callbackUrl": ',
    });
    assert.equal(broken.status, 400);
    assert.equal(((await broken.json()) as any).error.code, 'invalid_json');

    const large = await harness.api('POST', '/v1/tasks', { ...valid, payload: { blob: 'x'.repeat(8_000) } }, auth());
    assert.equal(large.status, 413);
    assert.equal(large.body.error.code, 'payload_too_large');

    const text = await fetch(`${harness.baseUrl}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', ...auth() },
      body: JSON.stringify(valid),
    });
    assert.equal(text.status, 415);
    assert.equal(((await text.json()) as any).error.code, 'unsupported_media_type');
  });

  it('refuses callbacks and webhooks aimed at private networks, naming the field', async () => {
    for (const url of [
      'http://127.0.0.1:8080/x',
      'http://127.1/',
      'http://0x7f000001/',
      'http://2130706433/',
      'http://[::ffff:127.0.0.1]/',
      'http://0.0.0.0/',
      'http://localhost:3000/',
      'http://10.0.0.5/',
      'http://192.168.1.1/',
      'http://169.254.169.254/latest/meta-data/',
      'http://[fd00::1]/',
    ]) {
      await rejected({ ...valid, callbackUrl: url }, 'callbackUrl');
      await rejected({ ...valid, webhookUrl: url }, 'webhookUrl');
    }
  });

  it('validates list queries and task ids', async () => {
    for (const query of ['limit=0', 'limit=101', 'limit=abc', 'status=done']) {
      const response = await harness.api('GET', `/v1/tasks?${query}`, undefined, auth());
      assert.equal(response.status, 400, query);
      assert.match(response.body.error.message, new RegExp(`^${query.split('=')[0]}:`));
    }
    const unknown = await harness.api('GET', '/v1/tasks/00000000-0000-4000-8000-000000000000', undefined, auth());
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'task_not_found');
    const long = await harness.api('GET', `/v1/tasks/${'x'.repeat(65)}`, undefined, auth());
    assert.equal(long.status, 400);
    assert.match(long.body.error.message, /^id:/);
    const route = await harness.api('GET', '/v2/nothing', undefined, auth());
    assert.equal(route.status, 404);
    assert.equal(route.body.error.code, 'not_found');
  });

  it('started nothing for any rejected request', async () => {
    assert.equal(await workflowsStarted(), 0);
  });
});

describe('logs', () => {
  it('never contain API keys, even at trace level', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const app = await buildApp({
      config: harness.config,
      target: { embeddedAddress: await temporalAddress() },
      logger: { level: 'trace', stream },
    });
    try {
      for (const key of [...KEYS, 'a-wrong-key-that-is-secret-too']) {
        await app.inject({ method: 'GET', url: '/v1/tasks?limit=1', headers: { authorization: `Bearer ${key}` } });
        await app.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${key}` }, payload: {} });
      }
    } finally {
      await app.close();
    }
    const text = lines.join('');
    assert.ok(text.length > 0, 'something was logged');
    for (const key of [...KEYS, 'a-wrong-key-that-is-secret-too']) assert.ok(!text.includes(key), `a log line holds ${key}`);
  });
});

describe('create', () => {
  it('answers 202 with id, status and createdAt, and starts exactly one workflow', async () => {
    const response = await harness.api('POST', '/v1/tasks', valid, auth());
    assert.equal(response.status, 202);
    assert.deepEqual(Object.keys(response.body).sort(), ['createdAt', 'id', 'status']);
    const task = await harness.api('GET', `/v1/tasks/${response.body.id}`, undefined, auth());
    assert.equal(task.status, 200);
    assert.equal(task.body.status, 'pending');
    assert.equal(task.body.retries, 3);
    assert.equal(task.body.timeout, 30);
    assert.equal(task.body.delay, 0);
    assert.equal(task.body.webhookUrl, null);
    assert.equal(task.body.attempts, 0);
    assert.equal(await workflowsStarted(), 1);
    const cancel = await harness.api('POST', `/v1/tasks/${response.body.id}/cancel`, undefined, auth());
    assert.equal(cancel.status, 202);
  });
});
