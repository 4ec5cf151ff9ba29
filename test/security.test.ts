/**
 * Trust: idempotent create (also under a race), signature rotation, the connect-time destination
 * check (DNS rebinding), hostile JSON, and exact Unicode round trips — end to end on a real server.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { DestinationGuard } from '../activities/destination-guard.js';
import { SigningKey, signatureHeaders } from '../activities/webhook-signature.js';
import { isSameRequest, legacyRequestHash, requestHash } from '../src/api/tasks/idempotency.js';
import { Receiver } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

const SECOND_SECRET = 'whsec_dGhpcy1pcy1hLXNlY29uZC10ZXN0LXNlY3JldC0xMjM0NTY=';
const FIRST_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const KEYS = ['tenant-one-key-abcdef', 'tenant-two-key-ghijkl'];

let receiver: Receiver;
let harness: Harness;
let resolves = 0;

before(async () => {
  receiver = await Receiver.start();
  // Names ending in .test resolve through this table; `rebind.test` answers a public address to the
  // create-time check and a blocked loopback address at connect time, as a rebinding attacker's DNS
  // would.
  const guard = new DestinationGuard({
    allowPrivateNetworks: false,
    allowedDestinations: ['127.0.0.1'],
    resolve: async (hostname) => {
      if (hostname === 'rebind.test') {
        resolves++;
        return [{ address: resolves === 1 ? '93.184.216.34' : '127.0.0.2', family: 4 }];
      }
      if (hostname === 'loopback.test') return [{ address: '127.0.0.2', family: 4 }];
      throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    },
  });
  harness = await startHarness({
    guard,
    env: {
      ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'false',
      ASYNCQUEUE_ALLOWED_DESTINATIONS: '127.0.0.1',
      ASYNCQUEUE_API_KEYS: KEYS.join(','),
      ASYNCQUEUE_SIGNING_SECRET: `${FIRST_SECRET},${SECOND_SECRET}`,
    },
  });
});

after(async () => {
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

const auth = (key = KEYS[0]!) => ({ authorization: `Bearer ${key}` });

async function finalView(id: string) {
  return eventually(
    async () => {
      const { body } = await harness.api('GET', `/v1/tasks/${id}`, undefined, auth());
      return ['succeeded', 'failed', 'cancelled'].includes(body.status) && body.webhook?.status !== 'pending' ? body : undefined;
    },
    { what: `task ${id} to end` },
  );
}

async function workflowCount(query: string): Promise<number> {
  return (await harness.client.workflow.count(`TaskQueue = '${harness.config.taskQueue}' AND ${query}`)).count;
}

describe('idempotent create', () => {
  const body = (path: string) => ({ callbackUrl: receiver.url(path), payload: { order: 1, items: ['a', 'b'] } });

  it('returns the existing task for a repeat and 409 for another body under the same key', async () => {
    const headers = { ...auth(), 'idempotency-key': 'order-1-charge' };
    const first = await harness.api('POST', '/v1/tasks', body('/idem'), headers);
    assert.equal(first.status, 202);
    const again = await harness.api('POST', '/v1/tasks', body('/idem'), headers);
    assert.equal(again.status, 200);
    assert.equal(again.body.id, first.body.id);
    assert.equal(again.headers.get('location'), `/v1/tasks/${first.body.id}`);
    assert.equal(typeof again.body.status, 'string');

    // Key order inside the body does not make it another request; a changed value does.
    const reordered = { payload: { items: ['a', 'b'], order: 1 }, callbackUrl: receiver.url('/idem') };
    assert.equal((await harness.api('POST', '/v1/tasks', reordered, headers)).status, 200);
    const changed = await harness.api('POST', '/v1/tasks', { ...body('/idem'), retries: 5 }, headers);
    assert.equal(changed.status, 409);
    assert.equal(changed.body.error.code, 'idempotency_key_reused');

    await finalView(first.body.id);
    assert.equal(receiver.to('/idem').length, 1);
    // Still the same task once it has ended (the key is kept as long as the task is retained).
    assert.equal((await harness.api('POST', '/v1/tasks', body('/idem'), headers)).status, 200);
  });

  it('scopes keys per API key', async () => {
    const one = await harness.api('POST', '/v1/tasks', body('/scoped'), { ...auth(KEYS[0]), 'idempotency-key': 'shared' });
    const two = await harness.api('POST', '/v1/tasks', body('/scoped'), { ...auth(KEYS[1]), 'idempotency-key': 'shared' });
    assert.equal(one.status, 202);
    assert.equal(two.status, 202);
    assert.notEqual(one.body.id, two.body.id);
  });

  it('creates exactly one task when concurrent requests race with one key', async () => {
    const headers = { ...auth(), 'idempotency-key': 'race-1' };
    const responses = await Promise.all(
      Array.from({ length: 12 }, () => harness.api('POST', '/v1/tasks', body('/race'), headers)),
    );
    const statuses = responses.map((response) => response.status).sort();
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 202]);
    assert.equal(new Set(responses.map((response) => response.body.id)).size, 1);
    const id = responses[0]!.body.id as string;
    await finalView(id);
    assert.equal(await workflowCount(`WorkflowId = 'task-${id}'`), 1);
    assert.equal(receiver.to('/race').length, 1);
  });

  it('refuses a malformed key, naming the header', async () => {
    const response = await harness.api('POST', '/v1/tasks', body('/bad-key'), { ...auth(), 'idempotency-key': 'x'.repeat(300) });
    assert.equal(response.status, 400);
    assert.match(response.body.error.message, /^Idempotency-Key:/);
  });
});

describe('the request hash', () => {
  it('is the same for the same meaning, whatever the key order, and differs for another value', () => {
    const task = {
      callbackUrl: 'https://app.test/run',
      payload: { b: [1, { y: 2, x: 1 }], a: 'é' },
      webhookUrl: null,
      retries: 3,
    };
    const reordered = {
      retries: 3,
      webhookUrl: null,
      payload: { a: 'é', b: [1, { x: 1, y: 2 }] },
      callbackUrl: 'https://app.test/run',
    };
    assert.equal(requestHash(task), requestHash(reordered));
    assert.notEqual(requestHash(task), requestHash({ ...task, retries: 4 }));
    assert.notEqual(requestHash(task), requestHash({ ...task, payload: { ...task.payload, b: [{ y: 2, x: 1 }, 1] } }));
  });

  it('did not change with RFC 8785: it equals the legacy hash for any parsed JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const parsed: unknown = JSON.parse(JSON.stringify(value));
        assert.equal(requestHash(parsed), legacyRequestHash(parsed));
      }),
      { numRuns: 500 },
    );
  });

  it('accepts the legacy hash stored by an older task, where the two would differ', () => {
    // An undefined property: dropped by RFC 8785, null in the legacy form.
    const task = { callbackUrl: 'https://app.test/run', webhookUrl: undefined };
    assert.notEqual(requestHash(task), legacyRequestHash(task));
    assert.equal(isSameRequest(requestHash(task), task), true);
    assert.equal(isSameRequest(legacyRequestHash(task), task), true);
    assert.equal(isSameRequest(legacyRequestHash({ ...task, retries: 5 }), task), false);
    assert.equal(isSameRequest(undefined, task), false);
  });

  it('hashes a payload with a lone surrogate, which RFC 8785 refuses, and tells such payloads apart', () => {
    const hash = requestHash({ payload: '\ud800' });
    assert.equal(hash, requestHash({ payload: '\ud800' }));
    assert.notEqual(hash, requestHash({ payload: '\ud801' }));
    assert.notEqual(hash, requestHash({ payload: '\\ud800' }));
    assert.notEqual(hash, requestHash({ payload: '\ufffd' }));
  });
});

describe('signatures', () => {
  it('signs with every configured secret, so receivers can rotate', async () => {
    const created = await harness.api('POST', '/v1/tasks', { callbackUrl: receiver.url('/signed') }, auth());
    await finalView(created.body.id);
    const [call] = receiver.to('/signed');
    const signatures = String(call!.headers['webhook-signature']).split(' ');
    assert.equal(signatures.length, 2);
    for (const secret of [FIRST_SECRET, SECOND_SECRET]) {
      assert.doesNotThrow(() => new Webhook(secret).verify(call!.body, call!.headers as Record<string, string>));
    }
    assert.throws(() =>
      new Webhook('whsec_bm90LXRoZS1yaWdodC1zZWNyZXQtYXQtYWxsLTEyMzQ1Ng==').verify(
        call!.body,
        call!.headers as Record<string, string>,
      ),
    );
  });
});

describe('signature headers', () => {
  it('carry one Standard Webhooks signature per secret, the HMAC the previous signer made', () => {
    const keys = [FIRST_SECRET, SECOND_SECRET].map((secret) => SigningKey.parse(secret)!);
    const body = JSON.stringify({ text: 'Grüße \ud800', n: 1 });
    const now = new Date(1_790_000_000_123);
    const headers = signatureHeaders(keys, 'msg_1', body, now);
    assert.equal(headers['webhook-timestamp'], '1790000000');
    const expected = [FIRST_SECRET, SECOND_SECRET].map((secret) => {
      const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
      return `v1,${createHmac('sha256', key).update(`msg_1.1790000000.${body}`).digest('base64')}`;
    });
    assert.equal(headers['webhook-signature'], expected.join(' '));
    assert.equal(SigningKey.parse('whsec_c2hvcnQ='), undefined, 'fewer than 24 bytes');
    assert.equal(SigningKey.parse('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'), undefined, 'no whsec_ prefix');
  });
});

describe('destinations', () => {
  it('allows an address listed in ASYNCQUEUE_ALLOWED_DESTINATIONS and nothing else private', async () => {
    const allowed = await harness.api('POST', '/v1/tasks', { callbackUrl: receiver.url('/allowed') }, auth());
    assert.equal(allowed.status, 202);
    assert.equal((await finalView(allowed.body.id)).status, 'succeeded');

    const port = new URL(receiver.origin).port;
    for (const url of [`http://127.0.0.2:${port}/`, `http://loopback.test:${port}/`, `http://[::1]:${port}/`]) {
      const refused = await harness.api('POST', '/v1/tasks', { callbackUrl: url }, auth());
      assert.equal(refused.status, 400, url);
      assert.match(refused.body.error.message, /^callbackUrl:/);
    }
  });

  it('checks the address actually connected to: a rebinding name fails the task, nothing is sent', async () => {
    // A receiver on the rebound address would get the call if the connect-time check let it through.
    const target = await Receiver.start('127.0.0.2');
    after(() => target.close());
    const port = new URL(target.origin).port;
    const created = await harness.api(
      'POST',
      '/v1/tasks',
      { callbackUrl: `http://rebind.test:${port}/rebound`, retries: 2 },
      auth(),
    );
    assert.equal(created.status, 202, 'the create-time lookup saw a public address');
    const view = await finalView(created.body.id);
    assert.equal(view.status, 'failed');
    assert.equal(view.error.code, 'destination_blocked');
    assert.equal(view.attempts, 1, 'a blocked destination is not retried');
    assert.equal(target.to('/rebound').length, 0);
    assert.ok(resolves >= 2);
  });
});

describe('hostile and unusual JSON', () => {
  it('delivers __proto__ and constructor keys as data, polluting nothing', async () => {
    const raw =
      '{"callbackUrl":"' +
      receiver.url('/proto') +
      '","payload":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"list":[{"__proto__":1}]}}';
    const response = await fetch(`${harness.baseUrl}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth() },
      body: raw,
    });
    assert.equal(response.status, 202);
    const { id } = (await response.json()) as { id: string };
    await finalView(id);
    const [call] = receiver.to('/proto');
    const expected = JSON.stringify(JSON.parse(raw).payload);
    assert.equal(call!.body, expected);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);

    const topLevel = await fetch(`${harness.baseUrl}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth() },
      body: '{"callbackUrl":"' + receiver.url('/proto') + '","__proto__":{"retries":100}}',
    });
    assert.equal(topLevel.status, 400);
    assert.match(((await topLevel.json()) as any).error.message, /^__proto__:/);
  });

  it('refuses absurdly deep payloads, naming the field', async () => {
    const deep = '['.repeat(5_000) + ']'.repeat(5_000);
    const response = await fetch(`${harness.baseUrl}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth() },
      body: `{"callbackUrl":"${receiver.url('/deep')}","payload":${deep}}`,
    });
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as any).error.message, /^payload:/);
  });

  it('round-trips Unicode exactly, in payloads and results', async () => {
    const text = 'Grüße, 世界 👋🏽 مرحبا e\u0301 \u2028\u2029 \u0000 tab\t "quote" \\ \ud800';
    const payload = { text, [text]: [text] };
    receiver.always('/unicode', (received, response) => {
      response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      response.end(received.body); // echo the payload back as the result
    });
    const created = await harness.api('POST', '/v1/tasks', { callbackUrl: receiver.url('/unicode'), payload }, auth());
    const view = await finalView(created.body.id);
    assert.equal(view.status, 'succeeded');
    assert.deepEqual(JSON.parse(receiver.to('/unicode')[0]!.body), payload);
    assert.deepEqual(view.result, payload);
  });
});
