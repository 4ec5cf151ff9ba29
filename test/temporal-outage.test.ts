/**
 * Temporal away: once the API has found it unreachable, requests answer 503 with Retry-After at
 * once instead of each waiting out the RPC deadline, and the API comes back by itself.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DevServer, freePort } from '../src/dev/dev-server.js';
import { Receiver, respondJson } from './support/receiver.js';
import { onDevServerOnly } from './support/engine.js';
import { eventually } from './support/eventually.js';
import { startHarness, type Harness } from './support/harness.js';

const RPC_TIMEOUT_S = 4;
let server: DevServer;
let harness: Harness;
let receiver: Receiver;
let dataDir: string;
let port: number;

const startServer = () =>
  DevServer.start({ port, uiPort: null, namespace: 'default', dbFile: path.join(dataDir, 'temporal.db') });

// Both ways a create starts a task: through the API's own connection, and (`npm start`) through
// the in-process worker's native one with eager start, which retries by itself.
for (const eagerStart of [false, true]) {
  describe(
    `Temporal unreachable${eagerStart ? ', tasks started eagerly' : ''}`,
    onDevServerOnly('stops and restarts a Temporal server of its own'),
    () => {
      before(async () => {
        dataDir = await mkdtemp(path.join(tmpdir(), 'asyncqueue-outage-'));
        port = await freePort();
        server = await startServer();
        harness = await startHarness({
          temporalAddress: server.address,
          env: { ASYNCQUEUE_TEMPORAL_RPC_TIMEOUT: String(RPC_TIMEOUT_S) },
          eagerStart,
        });
        receiver = await Receiver.start();
        receiver.always('/ok', respondJson(200, { ok: true }));
      });

      after(async () => {
        await harness.close();
        await receiver.close();
        await server.stop();
        await rm(dataDir, { recursive: true, force: true });
      });

      it('answers 503 with Retry-After within a second once it knows, and recovers by itself', async () => {
        const before = await harness.createTask({ callbackUrl: receiver.url('/ok') });
        await harness.waitForEnd(before);
        await server.stop();

        // The first request finds out (within the RPC deadline)…
        const first = await harness.api('POST', '/v1/tasks', { callbackUrl: receiver.url('/ok') });
        assert.equal(first.status, 503);
        // …and every one after it is answered at once.
        for (let i = 0; i < 5; i++) {
          const startedAt = Date.now();
          const create = await harness.api('POST', '/v1/tasks', { callbackUrl: receiver.url('/ok') });
          const tookMs = Date.now() - startedAt;
          assert.equal(create.status, 503);
          assert.equal(create.body.error.code, 'temporal_unavailable');
          assert.equal(create.headers.get('retry-after'), '1');
          assert.ok(tookMs < 1_000, `503 after ${tookMs} ms`);
        }
        const read = await harness.api('GET', `/v1/tasks/${before}`);
        assert.equal(read.status, 503);
        assert.equal((await harness.api('GET', '/readyz')).status, 503);

        server = await startServer();
        const again = await eventually(
          async () => {
            const create = await harness.api('POST', '/v1/tasks', { callbackUrl: receiver.url('/ok') });
            return create.status === 202 ? create : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 500, what: 'creates to work again' },
        );
        assert.equal((await harness.waitForEnd(again.body.id, { timeoutMs: 60_000 })).status, 'succeeded');
        assert.equal((await harness.api('GET', '/readyz')).status, 200);
      });
    },
  );
}
