/**
 * `npm run bench [-- --quick] [--big] [--out dir]`: AsyncQueue's throughput, latency and held-call
 * capacity on this machine, measured against the Temporal engine's own limit.
 *
 * It starts a Temporal dev server in memory (or uses TEMPORAL_ADDRESS), the API and ONE worker as
 * child processes (`api-main`, `worker-main`), and loopback callback and webhook receivers in this
 * process. Then, in order:
 *
 *  1. AsyncQueue ramp: POST /v1/tasks at fixed arrival rates (open model: requests are scheduled by
 *     the wall clock, not by answers, so queueing shows as latency), rate by rate until a rate is
 *     not sustainable (completions more than 5 % behind arrivals, any error, or e2e p99 exploding).
 *     Per rate: create latency (scheduled send → 202), end-to-end latency (scheduled send → webhook
 *     received), completions/s, errors, and CPU seconds and peak RSS of API, worker, Temporal server
 *     and this process, sampled from /proc every 250 ms.
 *  2. Concurrency: N callbacks held open ~30 s at once on the one worker (worker RSS, dispatch
 *     latency) and the time a cancel takes to reach a held call (cancel sent → the receiver sees
 *     the connection close) while all the others are still held.
 *  3. Baseline: the API and worker are stopped; a raw @temporalio/client in this process starts a
 *     workflow of the same shape with no-op activities (targets/baseline-workflow.ts) on its
 *     own task queue, run by an in-process worker, through the same ramp. Its highest sustainable rate is
 *     the engine's limit on this machine; AsyncQueue is reported as a share of it. (Run after, not
 *     beside, AsyncQueue's ramp: both would compete for the same cores.)
 *
 * Results go to `<out>/bench-<mode>-<timestamp>.json` and `.md` (default out: `bench-results/` in the
 * repository, which gets its own `.gitignore` so nothing there is ever committed); the markdown is
 * printed too. All traffic stays on 127.0.0.1. Ctrl-C stops every child and the server.
 *
 * Options: --quick (< 2 min: short steps, N = 100 only), --big (adds N = 5000 held calls),
 * --held 100,5000 (these held-call runs instead), --heartbeat-timeout S (ASYNCQUEUE_HEARTBEAT_TIMEOUT), --out DIR, --rates 10,20,40 (override the ramp), --step-seconds S, --skip asyncqueue,baseline,concurrency,
 * --cpu-prof DIR (the API and worker write V8 CPU profiles there when they stop; open them in Chrome
 * DevTools or speedscope to see where a task's CPU goes).
 * Scale-out: --apis N and --workers N run the AsyncQueue ramp with N API processes (requests spread
 * round-robin) and N workers on one task queue; --callback-ms MS makes each ramp callback take MS
 * before answering and --worker-slots N caps each worker's concurrent calls, so call slots, not CPU,
 * can be made the limit (with --workers > 1 the held-call runs are skipped: they measure one worker).
 * --worker-nice N runs the workers at that nice value (ASYNCQUEUE_WORKER_NICE): on this one host,
 * the API then gets a core first, as it would on a host of its own. The baseline's worker shares
 * its process with the client, so it has no such setting.
 *
 * This file runs the phases in order; each concern has a file of its own beside it: options.ts,
 * process-sampler.ts (/proc), receivers.ts, load-generator.ts, ramp.ts, targets/ (AsyncQueue and
 * the raw-Temporal baseline), held-calls.ts, report.ts.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DevServer } from '../../src/dev/dev-server.js';
import { runTool } from '../shared/run-tool.js';
import { runAsyncQueuePhase } from './asyncqueue-phase.js';
import { log, now, T0 } from './clock.js';
import { round } from './distribution.js';
import { describeMachine } from './machine.js';
import { parseOptions } from './options.js';
import { readProc, Sampler } from './process-sampler.js';
import type { RampResult } from './ramp.js';
import { callbackHandler, Endpoint, webhookHandler, type WebhookArrival } from './receivers.js';
import { writeReport, type Report } from './report.js';
import { cleanup, resources } from './run-resources.js';
import { asyncQueueEnv, reportedSettings } from './service-env.js';
import { prepareBaseline, runBaseline } from './targets/baseline.js';

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const runId = randomUUID().slice(0, 8);
  const startedAt = new Date().toISOString();
  const sampler = new Sampler();
  sampler.track('bench', process.pid);
  const findings: string[] = [];
  resources.tmpDir = await mkdtemp(path.join(os.tmpdir(), 'asyncqueue-bench-'));

  // Temporal: ours (in memory) unless TEMPORAL_ADDRESS names one.
  const external = process.env.TEMPORAL_ADDRESS?.trim();
  let address: string;
  let serverText: string;
  if (external !== undefined && external !== '') {
    address = external;
    serverText = `external at ${external} (its CPU and memory are not measured)`;
    log(`using the Temporal server at ${address}`);
  } else {
    log('starting an in-memory Temporal dev server');
    resources.server = await DevServer.start({ port: 0, uiPort: null, namespace: 'default' });
    address = resources.server.address;
    sampler.track('temporal', resources.server.pid);
    serverText = `embedded \`temporal server start-dev\` in memory at ${address} (pid ${resources.server.pid})`;
  }
  const machine = await describeMachine(serverText, () =>
    [resources.server?.pid, ...[...resources.apis, ...resources.workers].map((s) => s.child.pid)].filter((p): p is number => p !== undefined),
  );
  if (machine.otherActivity.length > 0) {
    log(`WARNING: other busy processes on this machine; numbers will not be representative:\n  ${machine.otherActivity.join('\n  ')}`);
  }

  // Receivers in this process.
  const webhooks = new Map<string, WebhookArrival>();
  const callbackEndpoint = await Endpoint.start(callbackHandler);
  const webhookEndpoint = await Endpoint.start(webhookHandler(webhooks));
  resources.endpoints.push(callbackEndpoint, webhookEndpoint);
  const receivers = { callbackOrigin: callbackEndpoint.origin, webhookUrl: `${webhookEndpoint.origin}/hook`, webhooks };

  const env = asyncQueueEnv(options, address, runId, resources.tmpDir);
  const settings = reportedSettings(options, env);
  const bundlePromise = prepareBaseline(options);

  let aqResult: RampResult | null = null;
  let concurrency: Report['concurrency'] = [];
  const lifetimePeakRssMb: Record<string, number> = {};
  const processOutput: Report['processOutput'] = {};
  if (!options.skip.has('asyncqueue') || !options.skip.has('concurrency')) {
    const phase = await runAsyncQueuePhase(options, env, sampler, receivers, findings);
    aqResult = phase.ramp;
    concurrency = phase.concurrency;
    Object.assign(lifetimePeakRssMb, phase.lifetimePeakRssMb);
    Object.assign(processOutput, phase.processOutput);
  }

  const baseResult = bundlePromise !== undefined ? await runBaseline(bundlePromise, address, runId, options, sampler, findings) : null;
  const benchHwm = readProc(process.pid)?.hwmKb;
  if (benchHwm !== undefined) lifetimePeakRssMb.bench = round(benchHwm / 1024, 0) ?? 0;
  const serverPid = resources.server?.pid;
  if (serverPid !== undefined) {
    const reading = readProc(serverPid);
    if (reading !== undefined) lifetimePeakRssMb.temporal = round(reading.hwmKb / 1024, 0) ?? 0;
  }

  for (const [name, summary] of Object.entries(processOutput)) {
    if (summary.errorLines > 0) findings.push(`${name} logged ${summary.errorLines} error line(s); tail in the JSON report`);
  }
  if (machine.otherActivity.length > 0) {
    findings.push(`Measured while other processes were running (${machine.otherActivity.length}); see "other procs CPU s" per step.`);
  }
  const aqLimit = aqResult?.maxSustainableRate ?? null;
  const baseLimit = baseResult?.maxSustainableRate ?? null;
  const report: Report = {
    startedAt,
    mode: options.quick ? 'quick' : 'full',
    options: {
      rates: options.rates,
      stepSeconds: options.stepMs / 1000,
      big: options.big,
      skip: [...options.skip],
      apis: options.apis,
      workers: options.workers,
      callbackMs: options.callbackMs,
      workerNice: options.workerNice,
      heartbeatTimeoutSec: options.heartbeatTimeoutMs / 1000,
    },
    machine,
    settings,
    asyncqueue: aqResult,
    baseline: baseResult,
    ratio: aqLimit !== null && baseLimit !== null && baseLimit > 0 ? aqLimit / baseLimit : null,
    concurrency,
    lifetimePeakRssMb,
    processOutput,
    findings,
    wallSeconds: round((now() - T0) / 1000, 0) ?? 0,
  };
  await writeReport(report, options.out);
  return 0;
}

runTool({
  name: 'bench',
  main,
  cleanup,
  log,
  interruptNote: 'stopping every child and the server',
  finished: () => log(`done in ${((now() - T0) / 1000).toFixed(0)} s`),
});
