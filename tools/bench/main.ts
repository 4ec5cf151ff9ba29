/**
 * `npm run bench [-- --quick] [--cluster] [--big] [--out dir]`: AsyncQueue's throughput, latency,
 * per-task engine costs and held-call capacity on this machine, measured against the minimal
 * raw-Temporal job doing the same work.
 *
 * The engine (engine.ts) is a Temporal dev server with its data in a SQLite file, as `npm start`
 * runs it (the default; `--dev-server-store memory` keeps it in memory), a production-shaped
 * cluster on PostgreSQL that the bench starts in a fresh temporary folder and stops at the end
 * (`--cluster`: tools/cluster/), or the server TEMPORAL_ADDRESS names. Loopback callback and
 * webhook receivers run in this process. Then, in order:
 *
 *  1. Baseline (targets/baseline.ts): a plain @temporalio/client in this process starts the
 *     minimal job (targets/baseline-workflow.ts: one activity POSTs the callback, one POSTs the
 *     webhook, to the same receivers, with AsyncQueue's timeouts and retry policies; no memo, no
 *     search attributes, no API), run by an in-process worker, through the ramp below.
 *  2. AsyncQueue ramp: the API and ONE worker as child processes (`api-main`, `worker-main`);
 *     POST /v1/tasks at the same open-model rates (requests are scheduled by the wall clock, not
 *     by answers, so queueing shows as latency), rate by rate until a rate is not sustainable
 *     (completions more than 5 % behind arrivals, any error, or e2e p99 exploding), a bisection,
 *     then a step at 80 % of the BASELINE's limit, so both are compared at the same load.
 *     Per rate: create latency (scheduled send → 202), end-to-end latency (scheduled send →
 *     webhook received; the baseline's ends the same way), completions/s, errors, and CPU seconds
 *     and peak RSS of API, worker, Temporal (and PostgreSQL) and this process, from /proc.
 *  3. Concurrency: N callbacks held open ~30 s at once on the one worker (worker RSS, dispatch
 *     latency) and the time a cancel takes to reach a held call while all the others are held.
 *  4. Per-task costs (task-costs.ts, server-metrics.ts): the histories of a sample of each
 *     target's finished tasks (events by type, visibility writes), and the server's RPCs over
 *     each ramp (its Prometheus `service_requests`) per task created.
 * The two targets run one after the other, never at once: both would compete for the same cores.
 *
 * Results go to `<out>/bench-<mode>-<timestamp>.json` and `.md` (default out: `bench-results/` in the
 * repository, which gets its own `.gitignore` so nothing there is ever committed); the markdown is
 * printed too. All traffic stays on 127.0.0.1. Ctrl-C stops every child and the engine.
 *
 * `--batch-only [--batches N] [--batch-size N]` runs only the batch-create measurement (batch-create.ts);
 * `--capacity [--rounds N] [--seconds S] [--outstanding N]` only the closed-loop capacity comparison
 * of the two targets, a fresh engine per run (capacity.ts).
 *
 * Options: --quick (about 2 min plus a cluster's start: short steps, N = 100 only), --cluster
 * (--shards N: its history shard count, default 8),
 * --big (adds N = 5000 held calls), --held 100,5000 (these held-call runs instead),
 * --heartbeat-timeout S (ASYNCQUEUE_HEARTBEAT_TIMEOUT), --engine-cpus 0 (the engine on CPU 0, the
 * bench, API and workers on the others, as a production engine runs on machines of its own:
 * cpu-pinning.ts), --out DIR, --rates 10,20,40 (override the
 * ramp), --step-seconds S, --skip asyncqueue,baseline,concurrency, --cpu-prof DIR (the API and
 * worker write V8 CPU profiles there when they stop; open them in Chrome DevTools or speedscope).
 * Scale-out: --apis N and --workers N run the AsyncQueue ramp with N API processes (requests spread
 * round-robin) and N workers on one task queue; --callback-ms MS makes each ramp callback (the
 * baseline's too) take MS before answering and --worker-slots N caps each worker's concurrent
 * calls, so call slots, not CPU, can be made the limit (with --workers > 1 the held-call runs are
 * skipped: they measure one worker). --worker-nice N runs the workers at that nice value
 * (ASYNCQUEUE_WORKER_NICE). The baseline's worker shares its process with the client, so it has
 * no such setting.
 *
 * This file runs the phases in order; each concern has a file of its own beside it: options.ts,
 * engine.ts, process-sampler.ts (/proc), receivers.ts, load-generator.ts, ramp.ts, targets/
 * (AsyncQueue and the raw-Temporal baseline), held-calls.ts, task-costs.ts, server-metrics.ts,
 * report.ts.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { workflowIdForTask } from '../../workflows/task-contract.js';
import { runTool } from '../shared/run-tool.js';
import { runAsyncQueuePhase } from './asyncqueue-phase.js';
import { BATCH_ONLY_FLAG, runBatchBench } from './batch-create.js';
import { CAPACITY_FLAG, runCapacityBench } from './capacity.js';
import { log, now, T0 } from './clock.js';
import { round } from './distribution.js';
import { pinEngine, pinProcesses } from './cpu-pinning.js';
import { startEngine } from './engine.js';
import { describeMachine } from './machine.js';
import { parseOptions } from './options.js';
import { readProc, Sampler } from './process-sampler.js';
import type { RampResult } from './ramp.js';
import { callbackHandler, Endpoint, webhookHandler, type WebhookArrival } from './receivers.js';
import { writeReport, type Report } from './report.js';
import { cleanup, closeBaselineConnections, resources } from './run-resources.js';
import { asyncQueueEnv, reportedSettings } from './service-env.js';
import { prepareBaseline, runBaseline } from './targets/baseline.js';
import { historyCosts, type HistoryCosts } from './task-costs.js';

async function main(): Promise<number> {
  // The batch-create measurement is a run of its own (batch-create.ts).
  if (process.argv.includes(BATCH_ONLY_FLAG)) return runBatchBench(process.argv.slice(2));
  // So is the closed-loop capacity comparison (capacity.ts).
  if (process.argv.includes(CAPACITY_FLAG)) return runCapacityBench(process.argv.slice(2));
  const options = parseOptions(process.argv.slice(2));
  const runId = randomUUID().slice(0, 8);
  const startedAt = new Date().toISOString();
  const loadAtStart = os.loadavg().map((value) => round(value, 2) ?? 0);
  const sampler = new Sampler();
  sampler.track('bench', process.pid);
  const findings: string[] = [];
  resources.tmpDir = await mkdtemp(path.join(os.tmpdir(), 'asyncqueue-bench-'));
  // Before any child starts: the API and worker processes inherit the clients' CPUs.
  const { cpuSplit } = options;
  if (cpuSplit !== null) pinProcesses([process.pid], cpuSplit.clients);

  // Temporal: the dev server (file or memory), the cluster (--cluster), or the one TEMPORAL_ADDRESS names.
  let engine = await startEngine(options);
  resources.engine = engine;
  if (cpuSplit !== null) pinEngine(engine, cpuSplit);
  // Read through resources.engine: a fresh engine per target replaces it between the two ramps.
  for (const name of Object.keys(engine.processGroups))
    sampler.trackGroup(name, () => resources.engine?.processGroups[name]?.() ?? []);
  // --quick's budget is for measuring: a cluster's start (PostgreSQL, schema, four services) is not part of it.
  options.deadlineMs += engine.startSec * 1000;
  const machine = await describeMachine(engine.description, () =>
    [
      ...Object.values(resources.engine?.processGroups ?? {}).flatMap((pids) => pids()),
      ...[...resources.apis, ...resources.workers].map((s) => s.child.pid),
    ].filter((p): p is number => p !== undefined),
  );
  if (machine.otherActivity.length > 0) {
    log(
      `WARNING: other busy processes on this machine; numbers will not be representative:\n  ${machine.otherActivity.join('\n  ')}`,
    );
  }

  // Receivers in this process: AsyncQueue's callbacks and webhooks and the baseline's go to the same ones.
  const webhooks = new Map<string, WebhookArrival>();
  const callbackEndpoint = await Endpoint.start(callbackHandler);
  const webhookEndpoint = await Endpoint.start(webhookHandler(webhooks));
  resources.endpoints.push(callbackEndpoint, webhookEndpoint);
  const receivers = { callbackOrigin: callbackEndpoint.origin, webhookUrl: `${webhookEndpoint.origin}/hook`, webhooks };

  const bundlePromise = prepareBaseline(options);
  const aqPhases = !options.skip.has('asyncqueue') || !options.skip.has('concurrency');
  // Each target on an engine of its own, started the same way, unless --same-server: neither
  // runs on a server the other has filled. The dev server keeps every task in one SQLite behind
  // one connection; on one server the target that ran second met the first one's whole ramp
  // there (in memory, its RSS 1.75 against 1.3 GB in the 80 % step).
  const freshEngines = !options.sameServer && engine.kind !== 'external' && bundlePromise !== undefined && aqPhases;

  // The baseline first: AsyncQueue's step after its ramp runs at 80 % of the baseline's limit.
  // Time after it: AsyncQueue's engine, start, ramp and final drain, the held-call runs, the histories.
  const afterBaselineMs =
    (freshEngines ? engine.startSec * 1000 : 0) +
    (aqPhases ? 10_000 : 0) +
    (options.skip.has('asyncqueue') ? 0 : options.rampBudgetMs + options.finalDrainMs) +
    (options.skip.has('concurrency') ? 0 : options.concurrency.reduce((sum, c) => sum + c.holdMs + 14_000, 0)) +
    6_000;
  let baseResult: RampResult | null = null;
  if (bundlePromise !== undefined) {
    try {
      baseResult = await runBaseline(bundlePromise, engine, receivers, runId, options, sampler, afterBaselineMs, findings);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log(`baseline ABORTED: ${message}`);
      findings.push(`Baseline aborted: ${message.slice(0, 2000)}`);
    }
  }
  // Per-task costs: the histories of a sample of each target's finished tasks, read while its engine runs.
  const sampleSize = options.quick ? 10 : 50;
  const costs: Report['costs'] = { asyncqueue: null, baseline: null };
  const readCosts = async (label: string, ids: string[]): Promise<HistoryCosts | null> => {
    if (ids.length === 0) return null;
    try {
      log(`${label}: reading the histories of ${Math.min(ids.length, sampleSize)} finished tasks`);
      return await historyCosts(engine.address, engine.namespace, ids.slice(0, sampleSize));
    } catch (err) {
      findings.push(`${label}: histories not read: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
  };
  const pick = (ids: string[]): string[] => ids.filter((_, i) => i % Math.max(1, Math.floor(ids.length / sampleSize)) === 0);
  costs.baseline = await readCosts('Temporal baseline', pick(baseResult?.finishedSample ?? []));
  if (freshEngines) {
    await closeBaselineConnections();
    log(`stopping the baseline's engine; AsyncQueue gets a fresh one`);
    await engine.stop();
    engine = await startEngine(options);
    resources.engine = engine;
    if (cpuSplit !== null) pinEngine(engine, cpuSplit);
    options.deadlineMs += engine.startSec * 1000;
  }
  const env = { ...asyncQueueEnv(options, engine.address, runId, resources.tmpDir), TEMPORAL_NAMESPACE: engine.namespace };
  const settings = reportedSettings(options, env);

  const baseLimit = baseResult?.maxSustainableRate ?? null;
  const targetLoadRate =
    baseResult?.firstUnsustainable != null && baseLimit !== null ? Math.round(8 * baseLimit) / 10 : undefined;

  let aqResult: RampResult | null = null;
  let concurrency: Report['concurrency'] = [];
  const lifetimePeakRssMb: Record<string, number> = {};
  const processOutput: Report['processOutput'] = {};
  if (aqPhases) {
    const phase = await runAsyncQueuePhase(options, env, sampler, receivers, findings, {
      targetLoadRate,
      metricsUrls: engine.metricsUrls,
    });
    aqResult = phase.ramp;
    concurrency = phase.concurrency;
    Object.assign(lifetimePeakRssMb, phase.lifetimePeakRssMb);
    Object.assign(processOutput, phase.processOutput);
  }

  costs.asyncqueue = await readCosts('AsyncQueue', pick(aqResult?.finishedSample ?? []).map(workflowIdForTask));
  if (engine.metricsUrls.length === 0) findings.push("RPCs per task: the server's Prometheus metrics were not reachable");

  const benchHwm = readProc(process.pid)?.hwmKb;
  if (benchHwm !== undefined) lifetimePeakRssMb.bench = round(benchHwm / 1024, 0) ?? 0;
  for (const name of Object.keys(engine.processGroups)) {
    const peak = sampler.lifetimePeakMb(name);
    if (peak !== undefined) lifetimePeakRssMb[name] = peak;
  }

  for (const [name, summary] of Object.entries(processOutput)) {
    if (summary.errorLines > 0) findings.push(`${name} logged ${summary.errorLines} error line(s); tail in the JSON report`);
  }
  if ((loadAtStart[0] ?? 0) >= 1.5) {
    findings.push(
      `The 1-minute load average was ${loadAtStart[0]} when the run started (2 cores: ≥ 1.5 means other work competed for them); see "other procs CPU s".`,
    );
  }
  if (machine.otherActivity.length > 0) {
    findings.push(
      `Measured while other processes were running (${machine.otherActivity.length}); see "other procs CPU s" per step.`,
    );
  }
  const aqLimit = aqResult?.maxSustainableRate ?? null;
  const report: Report = {
    startedAt,
    mode: options.quick ? 'quick' : 'full',
    engine: engine.kind,
    engineStartSec: engine.startSec,
    loadAverage: { start: loadAtStart, end: os.loadavg().map((value) => round(value, 2) ?? 0) },
    options: {
      rates: options.rates,
      stepSeconds: options.stepMs / 1000,
      big: options.big,
      skip: [...options.skip],
      apis: options.apis,
      workers: options.workers,
      oneProcess: options.oneProcess,
      eagerBaseline: options.eagerBaseline,
      callbackMs: options.callbackMs,
      workerNice: options.workerNice,
      heartbeatTimeoutSec: options.heartbeatTimeoutMs / 1000,
      freshEngines,
      cpuSplit,
    },
    machine,
    settings,
    asyncqueue: aqResult,
    baseline: baseResult,
    ratio: aqLimit !== null && baseLimit !== null && baseLimit > 0 ? aqLimit / baseLimit : null,
    costs,
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
