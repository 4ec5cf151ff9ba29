/**
 * The capacity comparison's closed loop (tools/bench/closed-loop.ts) against a real dev server,
 * driving the raw-Temporal baseline: with `drain` it returns only once every task it started has
 * ended, so on a shared engine (`--shared-engine`) or before a latency step (`--latency-step`)
 * the next measurement never meets its tasks under way.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closedLoop } from '../tools/bench/closed-loop.js';
import { startEngine } from '../tools/bench/engine.js';
import { parseOptions } from '../tools/bench/options.js';
import { Sampler } from '../tools/bench/process-sampler.js';
import { callbackHandler, Endpoint, webhookHandler, type WebhookArrival } from '../tools/bench/receivers.js';
import { closeBaselineConnections } from '../tools/bench/run-resources.js';
import { prepareBaseline, startBaseline } from '../tools/bench/targets/baseline.js';
import type { Target } from '../tools/bench/targets/target.js';
import { withEnv } from './support/environment.js';

describe("the capacity comparison's closed loop", () => {
  it('with drain, returns once every task it started has ended', async () => {
    // Without TEMPORAL_ADDRESS: the bench's own dev server, as a capacity run starts it.
    const options = withEnv('TEMPORAL_ADDRESS', undefined, () => parseOptions(['--skip', 'concurrency']));
    const engine = await withEnv('TEMPORAL_ADDRESS', undefined, () => startEngine(options));
    const webhooks = new Map<string, WebhookArrival>();
    const callback = await Endpoint.start(callbackHandler);
    const webhook = await Endpoint.start(webhookHandler(webhooks));
    const sampler = new Sampler();
    try {
      const bundle = prepareBaseline(options);
      assert.ok(bundle !== undefined, 'the baseline is bundled');
      const receivers = { callbackOrigin: callback.origin, webhookUrl: `${webhook.origin}/hook`, webhooks };
      const { target, stop } = await startBaseline(bundle, engine, receivers, 'drain-test', options);
      try {
        // The real target, counting what it started.
        const started: string[] = [];
        const counting: Target = {
          name: target.name,
          create: async (seq, tag) => {
            const result = await target.create(seq, tag);
            if (result.ok && result.id !== undefined) started.push(result.id);
            return result;
          },
          completedAt: (id) => target.completedAt(id),
          assertAlive: () => target.assertAlive(),
        };
        const run = await closedLoop(counting, sampler, [], { outstanding: 8, seconds: 8, tag: 'drain', drain: true });
        assert.ok(run.completed > 0, 'tasks completed in the measured window');
        assert.ok(started.length > 8, `more tasks started than are kept under way (${started.length})`);
        // Without the drain, the 8 under way when the loop stopped would still be running here.
        assert.deepEqual(
          started.filter((id) => target.completedAt(id) === undefined),
          [],
          'every task the loop started has ended',
        );
      } finally {
        await stop();
        await closeBaselineConnections();
      }
    } finally {
      sampler.stop();
      await Promise.all([callback.close(), webhook.close()]);
      await engine.stop();
    }
  });
});
