/**
 * Overload: a per-key rate limit (429 + Retry-After), load shedding when the event loop lags
 * (503 + Retry-After, health checks exempt), and a request timeout for clients that stall.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

const KEYS = ['overload-key-one-123', 'overload-key-two-456'];
const auth = (key: string) => ({ authorization: `Bearer ${key}` });
let limited: Harness;
let pressured: Harness;

before(async () => {
  limited = await startHarness({
    withoutWorker: true,
    env: {
      ASYNCQUEUE_API_KEYS: KEYS.join(','),
      ASYNCQUEUE_RATE_LIMIT: '5',
      ASYNCQUEUE_REQUEST_TIMEOUT: '1',
    },
  });
  pressured = await startHarness({ withoutWorker: true, env: { ASYNCQUEUE_MAX_EVENT_LOOP_DELAY_MS: '50' } });
});

after(async () => {
  await limited.close();
  await pressured.close();
  await stopOwnServer();
});

function blockEventLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy: this is the overload being simulated
  }
}

describe('rate limit', () => {
  it('answers 429 with Retry-After past the limit, per API key', async () => {
    for (let i = 0; i < 5; i++) {
      const response = await limited.api('GET', '/v1/tasks?limit=1', undefined, auth(KEYS[0]!));
      assert.equal(response.status, 200, JSON.stringify(response.body));
    }
    const refused = await limited.api('GET', '/v1/tasks?limit=1', undefined, auth(KEYS[0]!));
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, 'rate_limited');
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${retryAfter}`);
    // Another tenant's budget is untouched, and health checks are never limited.
    assert.equal((await limited.api('GET', '/v1/tasks?limit=1', undefined, auth(KEYS[1]!))).status, 200);
    assert.equal((await limited.api('GET', '/healthz')).status, 200);
  });
});

describe('back-pressure', () => {
  it('sheds load with 503 and Retry-After while the event loop lags, then recovers', async () => {
    let shed: { status: number; headers: Headers; body: any } | undefined;
    for (let attempt = 0; attempt < 3 && shed === undefined; attempt++) {
      blockEventLoop(1_200); // longer than the one-second sampling window
      const response = await pressured.api('GET', '/v1/tasks?limit=1');
      if (response.status === 503) shed = response;
    }
    assert.ok(shed, 'a request right after a 1.2 s stall was shed');
    assert.equal(shed.body.error.code, 'overloaded');
    assert.ok(Number(shed.headers.get('retry-after')) >= 1);

    blockEventLoop(1_200);
    assert.equal((await pressured.api('GET', '/healthz')).status, 200, 'liveness is exempt');

    await new Promise((resolve) => setTimeout(resolve, 2_100)); // two calm samples
    assert.equal((await pressured.api('GET', '/v1/tasks?limit=1')).status, 200);
  });
});

describe('timeouts', () => {
  it('closes a request that never finishes arriving with 408', async () => {
    const { port } = new URL(limited.baseUrl);
    const socket = connect(Number(port), '127.0.0.1');
    const started = Date.now();
    const answer = await new Promise<string>((resolve) => {
      let received = '';
      socket.on('data', (chunk) => {
        received += chunk.toString();
        if (received.includes('\r\n\r\n')) resolve(received);
      });
      socket.write(
        `POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS[1]}\r\n` +
          `Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"call`,
      );
    });
    socket.destroy();
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.ok(Date.now() - started < 10_000, `answered after ${Date.now() - started} ms`);
    assert.equal(limited.app.server.keepAliveTimeout, 72_000);
  });
});
