/**
 * `npm run bench -- --capacity [--rounds 3] [--seconds 60] [--outstanding 120] [--cluster] [--engine-cpus 0]`:
 * the most tasks per second each target completes, AsyncQueue against the minimal raw-Temporal
 * job, measured in a way two runs agree on.
 *
 * Why beside the ramp: a ramp's limit is the last rate that passed a pass/fail step, so one slow
 * second moves it by a whole step; on this 2-core machine the baseline's limit was 43, 60 and
 * 50/s in three runs. Here each target is driven closed-loop: `--outstanding` tasks are always
 * under way (a new one is created the moment one's webhook arrives), which keeps the engine at
 * its limit without a growing backlog, so the completions per second over the run's last three
 * quarters are its capacity. Each run gets a fresh engine (nothing the other target left in it);
 * the rounds alternate which target goes first, and the ratio is stated per round and of the
 * medians, with the spread, so that one noisy run cannot decide it. `--engine-cpus` gives the
 * engine CPUs of its own (cpu-pinning.ts), as a production cluster has.
 *
 * `--shared-engine` starts one engine for the whole comparison instead, and the targets take
 * turns on it in the rounds' order (b a, a b, b a, …), each run drained before the next starts.
 * Fresh engines differ from one another by a tenth in speed on this machine, which a fresh engine
 * per run puts into one target's figure and not the other's; on one engine the two runs of a
 * round meet the same process, the same database and the same minutes, and the drift as it
 * fills weighs on both alike. What a run's tasks leave behind (their activity timers fire 30–35 s
 * after they started, in the next run) the turns spread over both targets.
 *
 * `--latency-step` adds the issue's latency target to each run: once its closed loop has drained,
 * the target runs at 80 % of the baseline's capacity for as long again (latency-step.ts).
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { temporal } from '@temporalio/proto';
import { stopChild } from './children.js';
import { pinEngine, pinProcesses } from './cpu-pinning.js';
import { log } from './clock.js';
import { round } from './distribution.js';
import { startEngine, type Engine } from './engine.js';
import { parseOptions, type BenchOptions } from './options.js';
import { Sampler } from './process-sampler.js';
import { callbackHandler, Endpoint, webhookHandler, type WebhookArrival } from './receivers.js';
import { closeBaselineConnections, resources } from './run-resources.js';
import { asyncQueueEnv } from './service-env.js';
import { startAsyncQueue } from './targets/asyncqueue.js';
import { prepareBaseline, startBaseline } from './targets/baseline.js';
import type { Target } from './targets/target.js';
import { historyCosts, type HistoryCosts } from './task-costs.js';
import { workflowIdForTask } from '../../workflows/task-contract.js';
import { renderCapacity, summarize, type CapacityReport, type CapacityRun, type TargetName } from './capacity-report.js';
import { asyncQueueBundle, replayCosts } from './replay-cost.js';
import { LatencyStepRates, measureLatencyStep, type LatencyStep } from './latency-step.js';
import { closedLoop } from './closed-loop.js';

type History = temporal.api.history.v1.IHistory;

export const CAPACITY_FLAG = '--capacity';

/**
 * The targets' order in round `round` (from 1): rounds alternate which goes first (b a, a b, b a,
 * …), so a machine that warms up or slows down over the run favours neither; on a shared engine
 * each round starts with the target that ended the round before, which each does in turn.
 */
export function roundOrder(round: number): TargetName[] {
  return round % 2 === 1 ? ['baseline', 'asyncqueue'] : ['asyncqueue', 'baseline'];
}
const USAGE =
  'usage: npm run bench -- --capacity [--rounds N] [--seconds S] [--outstanding N] [--replays N] [--shared-engine] [--latency-step] [--cluster [--shards N]] [--workflow-threads N] [--one-process] [--eager-baseline] [--heartbeat-timeout S] [--engine-cpus LIST] [--dev-server-store file|memory] [--cpu-prof DIR] [--out DIR]';

interface Receivers {
  callbackOrigin: string;
  webhookUrl: string;
  webhooks: Map<string, WebhookArrival>;
}

export async function runCapacityBench(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv.filter((arg) => arg !== CAPACITY_FLAG),
    options: {
      rounds: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '60' },
      outstanding: { type: 'string', default: '120' },
      replays: { type: 'string', default: '1000' },
      cluster: { type: 'boolean', default: false },
      'shared-engine': { type: 'boolean', default: false },
      'latency-step': { type: 'boolean', default: false },
      shards: { type: 'string' },
      'workflow-threads': { type: 'string' },
      'one-process': { type: 'boolean' },
      'eager-baseline': { type: 'boolean' },
      'heartbeat-timeout': { type: 'string' },
      'engine-cpus': { type: 'string' },
      'dev-server-store': { type: 'string' },
      'cpu-prof': { type: 'string' },
      out: { type: 'string' },
    },
  });
  const rounds = positiveInteger('--rounds', values.rounds);
  const seconds = positiveInteger('--seconds', values.seconds);
  const outstanding = positiveInteger('--outstanding', values.outstanding);
  const replays = values.replays === '0' ? 0 : positiveInteger('--replays', values.replays);
  if (seconds < 8) throw new Error(`--seconds: at least 8 (a quarter of the run fills the pipeline)\n${USAGE}`);
  // The rest of the benchmark's settings (engine, service environment) as a full run has them.
  const options = parseOptions([
    '--skip',
    'concurrency',
    ...(values.cluster ? ['--cluster'] : []),
    ...(values.shards !== undefined ? ['--shards', values.shards] : []),
    ...(values['workflow-threads'] !== undefined ? ['--workflow-threads', values['workflow-threads']] : []),
    ...(values['one-process'] === true ? ['--one-process'] : []),
    ...(values['eager-baseline'] === true ? ['--eager-baseline'] : []),
    ...(values['heartbeat-timeout'] !== undefined ? ['--heartbeat-timeout', values['heartbeat-timeout']] : []),
    ...(values['cpu-prof'] !== undefined ? ['--cpu-prof', values['cpu-prof']] : []),
    ...(values.out !== undefined ? ['--out', values.out] : []),
    ...(values['engine-cpus'] !== undefined ? ['--engine-cpus', values['engine-cpus']] : []),
    ...(values['dev-server-store'] !== undefined ? ['--dev-server-store', values['dev-server-store']] : []),
  ]);
  const { cpuSplit } = options;
  const runId = randomUUID().slice(0, 8);
  const startedAt = new Date().toISOString();
  const loadAtStart = os.loadavg().map((value) => round(value, 2) ?? 0);
  resources.tmpDir = await mkdtemp(path.join(os.tmpdir(), 'asyncqueue-bench-capacity-'));
  const sampler = new Sampler();
  sampler.track('bench', process.pid);
  // Before any child starts: the API and worker processes inherit the clients' CPUs.
  if (cpuSplit !== null) pinProcesses([process.pid], cpuSplit.clients);

  const webhooks = new Map<string, WebhookArrival>();
  const callbackEndpoint = await Endpoint.start(callbackHandler);
  const webhookEndpoint = await Endpoint.start(webhookHandler(webhooks));
  resources.endpoints.push(callbackEndpoint, webhookEndpoint);
  const receivers: Receivers = {
    callbackOrigin: callbackEndpoint.origin,
    webhookUrl: `${webhookEndpoint.origin}/hook`,
    webhooks,
  };
  const bundlePromise = prepareBaseline(options);
  if (bundlePromise === undefined) throw new Error('the baseline is needed: the capacity run compares with it');

  const runs: CapacityRun[] = [];
  /** Histories of tasks done at the limit, per target, for the replay at the end. */
  const histories: Record<TargetName, History[]> = { baseline: [], asyncqueue: [] };
  const sharedEngine = values['shared-engine'] === true;
  // Both targets of a round step at one rate: 80 % of the baseline capacity measured last.
  const latencyRates = values['latency-step'] === true ? new LatencyStepRates() : undefined;
  const openEngine = async (): Promise<Engine> => {
    const engine = await startEngine(options);
    resources.engine = engine;
    if (cpuSplit !== null) pinEngine(engine, cpuSplit);
    for (const group of Object.keys(engine.processGroups)) sampler.trackGroup(group, engine.processGroups[group]!);
    return engine;
  };
  const closeEngine = async (engine: Engine): Promise<void> => {
    await engine.stop();
    resources.engine = undefined;
  };
  const shared = sharedEngine ? await openEngine() : undefined;
  try {
    for (let roundNo = 1; roundNo <= rounds; roundNo++) {
      for (const name of roundOrder(roundNo)) {
        const engine = shared ?? (await openEngine());
        try {
          const thisRun: OneRun = {
            engine,
            receivers,
            runId: `${runId}-${roundNo}`,
            options,
            sampler,
            outstanding,
            seconds,
            tag: `${name === 'baseline' ? 'b' : 'aq'}${roundNo}`,
            keep: histories[name],
            // The next run (or the latency step) must not meet this run's tasks under way.
            drain: shared !== undefined || latencyRates !== undefined,
            latencyStep:
              latencyRates !== undefined
                ? (baselineCapacity: number | undefined) => latencyRates.rateFor(roundNo, baselineCapacity)
                : undefined,
          };
          const run = name === 'baseline' ? await measureBaseline(bundlePromise, thisRun) : await measureAsyncQueue(thisRun);
          const { finishedIds: _ids, ...kept } = run;
          runs.push({ ...kept, round: roundNo, target: name });
          log(
            `round ${roundNo} ${name}: ${run.completedPerSec}/s (${run.completed} done, ${run.errors} errors), ` +
              `e2e p50/p99 ${run.e2eMs.p50}/${run.e2eMs.p99} ms, CPU ms/task ${JSON.stringify(run.cpuMsPerTask)}`,
          );
        } finally {
          if (shared === undefined) await closeEngine(engine);
        }
      }
    }
  } finally {
    if (shared !== undefined) await closeEngine(shared);
  }
  sampler.stop();

  // With every engine stopped: the replay has the machine to itself.
  let replay: CapacityReport['replay'] = null;
  if (replays > 0) {
    log(`replaying ${histories.baseline.length} + ${histories.asyncqueue.length} histories, ${replays} per round`);
    replay = await replayCosts(
      {
        baseline: { bundle: await bundlePromise, histories: histories.baseline },
        asyncqueue: { bundle: await asyncQueueBundle(), histories: histories.asyncqueue },
      },
      { replays, rounds: 3 },
    );
  }

  const report = summarize(runs, {
    startedAt,
    engine: options.cluster ? 'cluster' : 'dev-server',
    rounds,
    seconds,
    outstanding,
    sharedEngine,
    latencyStep: latencyRates !== undefined,
    workflowThreads: options.workflowThreads,
    oneProcess: options.oneProcess,
    eagerBaseline: options.eagerBaseline,
    cpuSplit,
    loadAverage: { start: loadAtStart, end: os.loadavg().map((value) => round(value, 2) ?? 0) },
    replay,
  });
  const markdown = renderCapacity(report);
  process.stdout.write(`${markdown}\n`);
  await mkdir(options.out, { recursive: true });
  const ignoreFile = path.join(options.out, '.gitignore');
  if (!existsSync(ignoreFile)) await writeFile(ignoreFile, '# benchmark output: never committed\n*\n');
  const base = path.join(options.out, `bench-capacity-${startedAt.replace(/[:.]/g, '-')}`);
  await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(`${base}.md`, `${markdown}\n`);
  log(`results: ${base}.md and ${base}.json`);
  return 0;
}

function positiveInteger(flag: string, value: string | undefined): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new Error(`${flag}: must be a positive integer\n${USAGE}`);
  return parsed;
}

/** What one target's run needs: its fresh engine, the shared receivers and settings. */
interface OneRun {
  engine: Engine;
  receivers: Receivers;
  runId: string;
  options: BenchOptions;
  sampler: Sampler;
  outstanding: number;
  seconds: number;
  /** Names this run's tasks and progress lines (b1, aq1, …). */
  tag: string;
  /** Where the histories read after the run go, for the replay at the end. */
  keep: History[];
  /** Wait for the run's tasks under way to finish (the engine serves the next run). */
  drain: boolean;
  /**
   * With `--latency-step`: the rate for the run's latency step, given the baseline's capacity
   * when this run measured it; null: no rate known (no step).
   */
  latencyStep: ((baselineCapacity: number | undefined) => number | null) | undefined;
}

async function measureBaseline(
  bundlePromise: ReturnType<typeof prepareBaseline> & object,
  { engine, receivers, runId, options, sampler, outstanding, seconds, tag, keep, drain, latencyStep }: OneRun,
): Promise<Omit<CapacityRun, 'round' | 'target'> & { finishedIds: string[] }> {
  const { target, stop } = await startBaseline(bundlePromise, engine, receivers, runId, options);
  try {
    const run = await closedLoop(target, sampler, engine.metricsUrls, { outstanding, seconds, tag, drain });
    const latency = await stepAt(latencyStep?.(run.completedPerSec), target, options, sampler, tag, seconds);
    return { ...run, history: await sampleHistories(engine, run.finishedIds, keep), ...latency };
  } finally {
    await stop();
    await closeBaselineConnections();
  }
}

async function measureAsyncQueue({
  engine,
  receivers,
  runId,
  options,
  sampler,
  outstanding,
  seconds,
  tag,
  keep,
  drain,
  latencyStep,
}: OneRun): Promise<Omit<CapacityRun, 'round' | 'target'> & { finishedIds: string[] }> {
  const env = { ...asyncQueueEnv(options, engine.address, runId, resources.tmpDir!), TEMPORAL_NAMESPACE: engine.namespace };
  try {
    const { target } = await startAsyncQueue(options, env, sampler, receivers);
    const run = await closedLoop(target, sampler, engine.metricsUrls, { outstanding, seconds, tag, drain });
    if (options.oneProcess) logEagerStarts(tag, await target.startsAnsweredEagerly());
    const latency = await stepAt(latencyStep?.(undefined), target, options, sampler, tag, seconds);
    return { ...run, history: await sampleHistories(engine, run.finishedIds.map(workflowIdForTask), keep), ...latency };
  } finally {
    await Promise.all([...resources.apis, ...resources.workers].map(stopChild));
    await Promise.all(resources.apiClients.map((client) => client.close()));
    resources.apis.length = 0;
    resources.workers.length = 0;
    resources.apiClients.length = 0;
    sampler.untrack('api');
    sampler.untrack('worker');
  }
}

/** How many of the run's starts (its warm-up's included) the server answered eagerly. */
function logEagerStarts(tag: string, starts: { eager: number; created: number } | undefined): void {
  log(
    starts === undefined
      ? `  ${tag}: the API's /metrics did not answer: eager starts not counted`
      : `  ${tag}: ${starts.eager} of ${starts.created} start(s) answered eagerly`,
  );
}

/** The run's latency step at `rate` (absent: none asked for; null: asked for, no rate known yet). */
async function stepAt(
  rate: number | null | undefined,
  target: Target,
  options: BenchOptions,
  sampler: Sampler,
  tag: string,
  seconds: number,
): Promise<{ latency?: LatencyStep | null }> {
  if (rate === undefined) return {};
  if (rate === null) {
    log(`  ${tag}: no baseline capacity measured yet, so no latency step`);
    return { latency: null };
  }
  return { latency: await measureLatencyStep(target, rate, options, sampler, tag, seconds) };
}

/** What the tasks done at the limit wrote: the histories of 20 of them, spread over the window. */
async function sampleHistories(engine: Engine, workflowIds: string[], keep: History[]): Promise<HistoryCosts | null> {
  if (workflowIds.length === 0) return null;
  const step = Math.max(1, Math.floor(workflowIds.length / 20));
  try {
    return await historyCosts(engine.address, engine.namespace, workflowIds.filter((_, i) => i % step === 0).slice(0, 20), keep);
  } catch (err) {
    log(`histories not read: ${err instanceof Error ? err.message : String(err)}`);
    return null;
  }
}
