/**
 * Sizes near Temporal's limits (2 MiB per payload by default): what is measured is the encoded
 * size Temporal stores, not the raw one, and every value too large for it is a 4xx naming the
 * field (or, for a callback's answer, a task failed as `response_too_large` with its webhook
 * delivered), never a 500 and never a task lost.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PayloadTooLargeError, TemporalFailedError } from '../src/shared/errors.js';
import { translateTemporalError } from '../src/api/temporal/translate-errors.js';
import { Receiver } from './support/receiver.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

let harness: Harness;
let receiver: Receiver;

before(async () => {
  // The largest body limit the configuration allows, so requests can reach Temporal's own limit.
  harness = await startHarness({ env: { ASYNCQUEUE_BODY_LIMIT_BYTES: String(2 * 1024 * 1024) } });
  receiver = await Receiver.start();
});

after(async () => {
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

describe('creates near the payload limit', () => {
  it('answers 413 naming payload for a body that fits the body limit but grows past Temporal’s when encoded', async () => {
    // `1e20` is 4 bytes here and 21 once stored: 420 KiB of request, 2.2 MiB of workflow input.
    const payload = `[${Array.from({ length: 105_000 }, () => '1e20').join(',')}]`;
    const body = `{"callbackUrl":"${receiver.url('/never')}","payload":${payload}}`;
    assert.ok(body.length < 1024 * 1024);
    const response = await harness.api('POST', '/v1/tasks', body);
    assert.equal(response.status, 413, JSON.stringify(response.body));
    assert.equal(response.body.error.code, 'payload_too_large');
    assert.match(response.body.error.message, /^payload:/);
    assert.equal(receiver.to('/never').length, 0);
  });

  it('still takes a large payload that fits', async () => {
    receiver.always('/big-ok', (received, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ size: received.body.length }));
    });
    const payload = { blob: 'x'.repeat(1_500_000) };
    const id = await harness.createTask({ callbackUrl: receiver.url('/big-ok'), payload });
    const task = await harness.waitForEnd(id);
    assert.equal(task.status, 'succeeded');
    assert.equal(task.result.size, JSON.stringify(payload).length);
  });
});

describe('callback answers that grow when encoded', () => {
  it('fails the task as response_too_large, webhook delivered, when 1,000 KiB of invalid UTF-8 would store as 3 MiB', async () => {
    receiver.always('/binary', (_received, response) => {
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      response.end(Buffer.alloc(1000 * 1024, 0xff)); // each byte becomes U+FFFD, three bytes in UTF-8
    });
    const id = await harness.createTask({
      callbackUrl: receiver.url('/binary'),
      webhookUrl: receiver.url('/binary-hook'),
      retries: 2,
    });
    const task = await harness.waitForEnd(id);
    assert.equal(task.status, 'failed');
    assert.equal(task.error.code, 'response_too_large');
    assert.equal(task.attempts, 1, 'not retried: the same answer would come back');
    assert.equal(task.webhook.status, 'delivered');
    const [hook] = await receiver.waitFor('/binary-hook', 1);
    assert.equal(JSON.parse(hook!.body).error.code, 'response_too_large');
  });
});

describe('values sent to a running task', () => {
  it('answers 413 for a /complete result over the result limit, and the attempt can still complete', async () => {
    receiver.always('/accept', (_received, response) => {
      response.writeHead(202, { 'asyncqueue-completion': 'async' });
      response.end();
    });
    const id = await harness.createTask({ callbackUrl: receiver.url('/accept'), timeout: 60 });
    const [call] = await receiver.waitFor('/accept', 1);
    const headers = { 'asyncqueue-task-token': String(call!.headers['asyncqueue-task-token']) };
    const huge = await harness.api('POST', `/v1/tasks/${id}/complete`, { result: 'é'.repeat(600_000) }, headers);
    assert.equal(huge.status, 413, JSON.stringify(huge.body));
    assert.match(huge.body.error.message, /^result:/);
    const done = await harness.api('POST', `/v1/tasks/${id}/complete`, { result: 'fits' }, headers);
    assert.equal(done.status, 202);
    assert.equal((await harness.waitForEnd(id)).result, 'fits');
  });
});

describe("Temporal's own refusals", () => {
  it('maps INVALID_ARGUMENT about sizes, as the server words it, to a 413 naming the field', async () => {
    const refused = await harness.client.workflow
      .start('taskWorkflow', {
        taskQueue: `nowhere-${Date.now()}`,
        workflowId: `oversize-${Date.now()}`,
        args: ['x'.repeat(2_200_000)] as never,
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    assert.ok(refused !== undefined, 'Temporal accepted a 2.2 MB input');
    const translated = translateTemporalError(refused, { sizeField: 'payload' });
    assert.ok(translated instanceof PayloadTooLargeError, String(refused));
    assert.equal(translated.statusCode, 413);
    assert.equal(translated.field, 'payload');
    assert.match(translated.message, /^payload:/);
  });
});

describe('Temporal failing inside', () => {
  it('answers a server-side failure (INTERNAL, UNKNOWN, ABORTED, FAILED_PRECONDITION, NOT_FOUND not about a task) as a retryable 503, not a 500', () => {
    for (const code of [2, 13, 10, 9, 5]) {
      const grpc = Object.assign(new Error(`${code} INTERNAL: shard status unknown`), {
        code,
        details: 'shard status unknown',
        metadata: {},
      });
      const translated = translateTemporalError(grpc);
      assert.ok(translated instanceof TemporalFailedError, `code ${code}`);
      assert.equal(translated.statusCode, 503);
      assert.equal(translated.retryAfterSeconds, 1);
    }
    // NOT_FOUND about a task is that task being unknown.
    const notFound = Object.assign(new Error('5 NOT_FOUND: workflow not found'), {
      code: 5,
      details: 'workflow not found',
      metadata: {},
    });
    assert.equal((translateTemporalError(notFound, { taskId: 't' }) as Error).name, 'TaskNotFoundError');
  });
});
