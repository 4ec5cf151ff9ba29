/**
 * The AsyncQueue half of the run: the API and worker processes start, the ramp measures their
 * limit (its step after the ramp at 80 % of the baseline's limit, measured before), the held-call
 * runs their capacity; then the processes stop. A phase that fails is a finding, not the end of
 * the run.
 */
import { sleep } from '../shared/timing.js';
import { outputSummary, stopChild, type OutputSummary } from './children.js';
import { log, now } from './clock.js';
import { round } from './distribution.js';
import { runHeldCalls, type ConcurrencyResult } from './held-calls.js';
import type { BenchOptions } from './options.js';
import { processName, readProc, type Sampler } from './process-sampler.js';
import { ramp, type RampResult } from './ramp.js';
import type { WebhookArrival } from './receivers.js';
import { resources } from './run-resources.js';
import { rpcCosts, scrapeRequests } from './server-metrics.js';
import { startAsyncQueue } from './targets/asyncqueue.js';

export interface AsyncQueuePhase {
  ramp: RampResult | null;
  concurrency: ConcurrencyResult[];
  /** VmHWM of each API and worker process, read just before they stop. */
  lifetimePeakRssMb: Record<string, number>;
  processOutput: Record<string, OutputSummary>;
}

export async function runAsyncQueuePhase(
  options: BenchOptions,
  env: Record<string, string>,
  sampler: Sampler,
  receivers: { callbackOrigin: string; webhookUrl: string; webhooks: Map<string, WebhookArrival> },
  findings: string[],
  measure: {
    /** The rate of the step after the ramp: 80 % of the baseline's limit (undefined: of AsyncQueue's own). */
    targetLoadRate: number | undefined;
    metricsUrls: string[];
  },
): Promise<AsyncQueuePhase> {
  const phase: AsyncQueuePhase = { ramp: null, concurrency: [], lifetimePeakRssMb: {}, processOutput: {} };
  try {
    const { target, api } = await startAsyncQueue(options, env, sampler, receivers);

    if (!options.skip.has('asyncqueue')) {
      // After this ramp: held-call runs (~hold + 10 s each), stopping the children, reading histories.
      const reserveMs =
        (options.skip.has('concurrency') ? 0 : options.concurrency.reduce((sum, c) => sum + c.holdMs + 14_000, 0)) + 6_000;
      const before = await scrapeRequests(measure.metricsUrls);
      const startedAt = now();
      const aqResult = await ramp(target, options, sampler, 'aq-', {
        reserveMs,
        describeLeftover: (ids) => target.describeTasks(ids),
        ...(measure.targetLoadRate !== undefined ? { targetLoadRate: measure.targetLoadRate } : {}),
      });
      const after = before !== undefined ? await scrapeRequests(measure.metricsUrls) : undefined;
      if (before !== undefined && after !== undefined)
        aqResult.rpc = rpcCosts(before, after, aqResult.createdTotal, (now() - startedAt) / 1000);
      phase.ramp = aqResult;
      if (aqResult.leftover.notCompleted > 0) {
        findings.push(
          `AsyncQueue: ${aqResult.leftover.notCompleted} created task(s) had no webhook ${options.finalDrainMs / 1000} s after the ramp ended ` +
            `(e.g. ${aqResult.leftover.ids.slice(0, 3).join(', ')}): ${JSON.stringify(aqResult.leftover.views.slice(0, 2))}`,
        );
      }
      for (const step of aqResult.steps) {
        if (step.errors > 0)
          findings.push(`AsyncQueue at ${step.targetRate}/s: ${step.errors} create errors ${JSON.stringify(step.errorKinds)}`);
      }
    }

    if (!options.skip.has('concurrency')) {
      await sleep(2_000);
      await runHeldCalls(
        options.concurrency,
        api,
        receivers.webhookUrl,
        receivers.webhooks,
        sampler,
        () => target.assertAlive(),
        phase.concurrency,
        findings,
      );
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log(`AsyncQueue phase ABORTED: ${message}`);
    findings.push(`AsyncQueue phase aborted: ${message.slice(0, 2000)}`);
  }

  // Lifetime peaks and output are read now; then the processes stop: the baseline must not share the CPU with them.
  for (const [name, pid] of sampler.tracked()) {
    const reading = readProc(pid);
    if (reading !== undefined && (name.startsWith('api') || name.startsWith('worker')))
      phase.lifetimePeakRssMb[name] = round(reading.hwmKb / 1024, 0) ?? 0;
  }
  resources.apis.forEach((api, i) => (phase.processOutput[processName('api', i)] = outputSummary(api)));
  resources.workers.forEach((worker, i) => (phase.processOutput[processName('worker', i)] = outputSummary(worker)));
  log('stopping the API and the worker processes');
  await Promise.all([...resources.apis, ...resources.workers].map(stopChild));
  resources.apis.forEach((_, i) => sampler.untrack(processName('api', i)));
  resources.workers.forEach((_, i) => sampler.untrack(processName('worker', i)));
  return phase;
}
