/**
 * The open-model ramp's time budget (tools/bench/ramp.ts) against a real dev server, driving the
 * raw-Temporal baseline at low rates with one-second steps: a ramp that has used its budget starts
 * no further rate and no 80 % step, and its note says which and why, so a report never shows a
 * limit or a p99 verdict the run did not measure.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEngine, type Engine } from '../tools/bench/engine.js';
import { parseOptions, type BenchOptions } from '../tools/bench/options.js';
import { Sampler } from '../tools/bench/process-sampler.js';
import { ramp } from '../tools/bench/ramp.js';
import { callbackHandler, Endpoint, webhookHandler, type WebhookArrival } from '../tools/bench/receivers.js';
import { closeBaselineConnections } from '../tools/bench/run-resources.js';
import { prepareBaseline, startBaseline } from '../tools/bench/targets/baseline.js';
import type { Target } from '../tools/bench/targets/target.js';
import { withEnv } from './support/environment.js';

let options: BenchOptions;
let engine: Engine;
let callback: Endpoint;
let webhook: Endpoint;
let target: Target;
let stopBaseline: () => Promise<void>;
const sampler = new Sampler();

before(async () => {
  // Without TEMPORAL_ADDRESS: the bench's own dev server, as a ramp starts it.
  options = withEnv('TEMPORAL_ADDRESS', undefined, () => parseOptions(['--skip', 'concurrency']));
  engine = await withEnv('TEMPORAL_ADDRESS', undefined, () => startEngine(options));
  const webhooks = new Map<string, WebhookArrival>();
  callback = await Endpoint.start(callbackHandler);
  webhook = await Endpoint.start(webhookHandler(webhooks));
  const bundle = prepareBaseline(options);
  assert.ok(bundle !== undefined, 'the baseline is bundled');
  const receivers = { callbackOrigin: callback.origin, webhookUrl: `${webhook.origin}/hook`, webhooks };
  const started = await startBaseline(bundle, engine, receivers, 'ramp-budget', options);
  target = started.target;
  stopBaseline = started.stop;
});

after(async () => {
  await stopBaseline();
  await closeBaselineConnections();
  sampler.stop();
  await Promise.all([callback.close(), webhook.close()]);
  await engine.stop();
});

describe("the ramp's time budget", () => {
  it('starts no further rate once its budget is used up, and names the rate it did not run', async () => {
    // A one-second step, its drain and the second between steps leave less than a step's room
    // (plus 2 s) in a 3 s budget.
    const short: BenchOptions = {
      ...options,
      rates: [4, 8],
      stepMs: 1_000,
      rampBudgetMs: 3_000,
      refineSteps: 0,
      targetLoadStepFactor: 0,
    };
    const result = await ramp(target, short, sampler, 'budget-rates', { reserveMs: 0 });
    assert.deepEqual(
      result.steps.map((step) => step.targetRate),
      [4],
    );
    assert.ok(result.steps[0]!.sustainable, result.steps[0]!.reason);
    assert.equal(result.note, "stopped before 8/s: the ramp's time budget (3 s) was used up");
    assert.equal(result.maxSustainableRate, 4);
    assert.equal(result.limitNotReached, true, 'no rate failed: the limit was not found');
    assert.equal(result.leftover.notCompleted, 0);
  });

  it('skips the 80 % step when the budget has no room for it and its pause, and says so', async () => {
    // The 80 % step needs its own length and a 40 s pause before it: more than a 30 s budget has.
    const short: BenchOptions = {
      ...options,
      rates: [4],
      stepMs: 1_000,
      rampBudgetMs: 30_000,
      refineSteps: 0,
      targetLoadStepFactor: 1,
    };
    const result = await ramp(target, short, sampler, 'budget-80', { reserveMs: 0, targetLoadRate: 3 });
    assert.deepEqual(
      result.steps.map((step) => step.targetRate),
      [4],
    );
    assert.equal(result.targetLoad, null);
    assert.equal(result.targetLoadOutOfTime, true);
    assert.equal(result.note, "no step at 80 % of the limit: the ramp's time budget was used up");
  });
});
