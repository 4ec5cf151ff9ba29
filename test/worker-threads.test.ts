/**
 * ASYNCQUEUE_WORKER_WORKFLOW_THREADS reaches the worker: a worker started with it runs that many
 * threads for workflow code (counted in Node's own report of this process's worker threads), and
 * its tasks run on them against the real Temporal server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { terminateRunning } from './support/cleanup.js';
import { Receiver, respondJson } from './support/receiver.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

let receiver: Receiver;
const harnesses: Harness[] = [];

before(async () => {
  receiver = await Receiver.start();
});

after(async () => {
  for (const harness of harnesses) {
    await terminateRunning(harness);
    await harness.close();
  }
  await receiver.close();
  await stopOwnServer();
});

/** Node worker threads running in this process now (the SDK runs workflow code on such threads). */
const workerThreads = (): number => (process.report.getReport() as { workers: unknown[] }).workers.length;

async function started(env: Record<string, string>): Promise<Harness> {
  const harness = await startHarness({ env });
  harnesses.push(harness);
  receiver.always('/threads', respondJson(200, { ok: true }));
  const id = await harness.createTask({ callbackUrl: receiver.url('/threads') });
  assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
  return harness;
}

describe('workflow threads', () => {
  it('a worker runs ASYNCQUEUE_WORKER_WORKFLOW_THREADS threads for workflow code (default 1)', async () => {
    const before = workerThreads();
    await started({});
    const withDefault = workerThreads();
    assert.equal(withDefault - before, 1, 'the default worker started one workflow thread');
    await started({ ASYNCQUEUE_WORKER_WORKFLOW_THREADS: '3' });
    assert.equal(workerThreads() - withDefault, 3, 'the worker given 3 started three');
  });
});
