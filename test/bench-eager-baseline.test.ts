/**
 * The bench's `--eager-baseline` (tools/bench/targets/baseline.ts) against a real dev server: the
 * raw-Temporal job then starts its workflows through its worker's connection and the server hands
 * it their first workflow tasks in the start's answer, as `npm start` starts AsyncQueue's tasks;
 * without the option its starts are ordinary ones. So a `--one-process --eager-baseline` capacity
 * run compares like with like.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEngine, type Engine } from '../tools/bench/engine.js';
import { parseOptions, type BenchOptions } from '../tools/bench/options.js';
import { callbackHandler, Endpoint, webhookHandler, type WebhookArrival } from '../tools/bench/receivers.js';
import { closeBaselineConnections } from '../tools/bench/run-resources.js';
import { prepareBaseline, startBaseline } from '../tools/bench/targets/baseline.js';
import { eventually } from './support/eventually.js';
import { withEnv } from './support/environment.js';

let engine: Engine;
let callback: Endpoint;
let webhook: Endpoint;
const webhooks = new Map<string, WebhookArrival>();

before(async () => {
  const options = withEnv('TEMPORAL_ADDRESS', undefined, () => parseOptions(['--skip', 'concurrency']));
  engine = await withEnv('TEMPORAL_ADDRESS', undefined, () => startEngine(options));
  callback = await Endpoint.start(callbackHandler);
  webhook = await Endpoint.start(webhookHandler(webhooks));
});

after(async () => {
  await Promise.all([callback.close(), webhook.close()]);
  await engine.stop();
});

/** Starts the baseline with `args`, creates `n` tasks after its warm-up, and waits for their webhooks. */
async function run(args: string[], runId: string, n: number): Promise<{ eager: number; created: number }> {
  const options: BenchOptions = withEnv('TEMPORAL_ADDRESS', undefined, () => parseOptions(['--skip', 'concurrency', ...args]));
  const bundle = prepareBaseline(options);
  assert.ok(bundle !== undefined, 'the baseline is bundled');
  const receivers = { callbackOrigin: callback.origin, webhookUrl: `${webhook.origin}/hook`, webhooks };
  const { target, stop } = await startBaseline(bundle, engine, receivers, runId, options);
  try {
    const [startsBefore, eagerBefore] = [target.starts, target.eagerStarts];
    const created = await Promise.all(Array.from({ length: n }, (_, i) => target.create(i, 'eager')));
    const ids = created.map((result) => {
      assert.ok(result.ok && result.id !== undefined, `created: ${JSON.stringify(result)}`);
      return result.id;
    });
    await eventually(async () => (ids.every((id) => target.completedAt(id) !== undefined) ? true : undefined), {
      what: 'every webhook',
    });
    assert.equal(target.starts - startsBefore, n, 'every start counted');
    return { eager: target.eagerStarts - eagerBefore, created: ids.length };
  } finally {
    await stop();
    await closeBaselineConnections();
  }
}

describe('bench: the eager baseline', () => {
  it('parses --eager-baseline, off by default', () => {
    withEnv('TEMPORAL_ADDRESS', undefined, () => {
      assert.equal(parseOptions([]).eagerBaseline, false);
      assert.equal(parseOptions(['--eager-baseline']).eagerBaseline, true);
    });
  });

  it("starts the job's workflows eagerly through its worker's connection, each run to its webhook", async () => {
    const { eager, created } = await run(['--eager-baseline'], 'eager', 10);
    assert.equal(eager, created, 'every start found a free slot on the idle worker');
  });

  it('starts them as ordinary starts without the option', async () => {
    const { eager, created } = await run([], 'plain', 5);
    assert.equal(created, 5);
    assert.equal(eager, 0);
  });
});
