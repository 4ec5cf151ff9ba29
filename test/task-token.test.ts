/**
 * Task tokens: derived from the task id under a server secret, so none stands in a workflow's
 * history (which anyone with the Temporal UI reads), and checked by recomputing it before any
 * Temporal call. Bad tokens are rate-limited by client address, never in a real callee's bucket.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildApp } from '../src/api/app.js';
import { freePort } from '../src/dev/dev-server.js';
import { TaskTokenKeys } from '../activities/task-token.js';
import { Receiver } from './support/receiver.js';
import { TEST_TASK_TOKEN_SECRET, startHarness, stopOwnServer, type Harness } from './support/harness.js';

const API_KEY = 'token-test-key-1234567890';
const withKey = { authorization: `Bearer ${API_KEY}` };
let harness: Harness;
let receiver: Receiver;

before(async () => {
  harness = await startHarness({ env: { ASYNCQUEUE_API_KEYS: API_KEY, ASYNCQUEUE_RATE_LIMIT: '30' } });
  receiver = await Receiver.start();
});

after(async () => {
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

describe('task tokens', () => {
  it('are derived, not stored: the callee gets one, and no history holds it', async () => {
    receiver.always('/hold', () => undefined);
    const id = await harness.createTask({ callbackUrl: receiver.url('/hold'), timeout: 60 }, withKey);
    const [call] = await receiver.waitFor('/hold', 1);
    const token = String(call!.headers['asyncqueue-task-token']);
    assert.equal(token, TaskTokenKeys.fromSecrets([TEST_TASK_TOKEN_SECRET])!.tokenFor(id));
    assert.equal(
      (await harness.api('POST', `/v1/tasks/${id}/progress`, { percent: 5 }, { 'asyncqueue-task-token': token })).status,
      202,
    );

    const history = JSON.stringify(await harness.client.workflow.getHandle(`task-${id}`).fetchHistory());
    const description = JSON.stringify(await harness.client.workflow.getHandle(`task-${id}`).describe());
    assert.ok(!history.includes(token), 'the token is in the history');
    assert.ok(!description.includes(token), 'the token is in the memo or search attributes');
    assert.ok(!/taskToken|tokenDigest/.test(history + description));
    await harness.api('POST', `/v1/tasks/${id}/cancel`, {}, withKey);
  });

  it('verifies with any configured secret, so the secret can rotate', () => {
    const old = TaskTokenKeys.fromSecrets(['an-old-secret-that-is-long-enough-123'])!;
    const rotating = TaskTokenKeys.fromSecrets([
      'a-new-secret-that-is-long-enough-4567',
      'an-old-secret-that-is-long-enough-123',
    ])!;
    assert.ok(rotating.verify('t1', old.tokenFor('t1')));
    assert.ok(rotating.verify('t1', rotating.tokenFor('t1')));
    assert.ok(!rotating.verify('t2', old.tokenFor('t1')), "another task's token");
    assert.ok(!old.verify('t1', rotating.tokenFor('t1')));
    assert.equal(TaskTokenKeys.fromSecrets(['short']), undefined);
  });

  it('answers 401 for a wrong token whether or not the task exists, without asking Temporal', async () => {
    // An API whose Temporal is a closed port: any Temporal call would make the answer a 503.
    const dead = await buildApp({
      config: { ...harness.config, temporalRpcTimeoutMs: 2_000 },
      target: { embeddedAddress: `127.0.0.1:${await freePort()}` },
      logger: false,
    });
    try {
      const post = async (path: string, body: unknown) => {
        const answer = await dead.inject({
          method: 'POST',
          url: path,
          payload: body as object,
          headers: { 'asyncqueue-task-token': 'aqt1_junk' },
        });
        return { status: answer.statusCode, body: answer.json() as unknown };
      };
      const unknown = await post('/v1/tasks/no-such-task/progress', { percent: 1 });
      assert.equal(unknown.status, 401, JSON.stringify(unknown.body));
      const id = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 600 }, withKey);
      const existing = await post(`/v1/tasks/${id}/complete`, { result: 1 });
      assert.equal(existing.status, 401);
      assert.deepEqual(existing.body, unknown.body, 'the answer does not tell whether the task exists');
      // A valid token reaches Temporal (here: unreachable), which proves the 401s above did not.
      const valid = await dead.inject({
        method: 'POST',
        url: `/v1/tasks/${id}/progress`,
        payload: { percent: 1 },
        headers: { 'asyncqueue-task-token': TaskTokenKeys.fromSecrets([TEST_TASK_TOKEN_SECRET])!.tokenFor(id) },
      });
      assert.equal(valid.statusCode, 503);
      await harness.api('POST', `/v1/tasks/${id}/cancel`, {}, withKey);
    } finally {
      await dead.close();
    }
  });

  it("counts junk tokens against their sender's address, never against the real callee", async () => {
    receiver.always('/busy', () => undefined);
    const id = await harness.createTask({ callbackUrl: receiver.url('/busy'), timeout: 60 }, withKey);
    const [call] = await receiver.waitFor('/busy', 1);
    const token = String(call!.headers['asyncqueue-task-token']);
    const limit = 30;
    const junk = await Promise.all(
      Array.from(
        { length: limit + 10 },
        async () =>
          (await harness.api('POST', `/v1/tasks/${id}/progress`, { percent: 1 }, { 'asyncqueue-task-token': 'aqt1_forged' }))
            .status,
      ),
    );
    assert.ok(junk.includes(429), 'the flood of bad tokens is limited');
    assert.ok(junk.every((status) => status === 401 || status === 429));
    // The same address, but with the task's own token: its own budget, untouched by the flood.
    const real = await harness.api('POST', `/v1/tasks/${id}/progress`, { percent: 50 }, { 'asyncqueue-task-token': token });
    assert.equal(real.status, 202, JSON.stringify(real.body));
    await harness.api('POST', `/v1/tasks/${id}/cancel`, {}, withKey);
  });
});
