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
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { temporal } from '@temporalio/proto';
import { sleep } from '../shared/timing.js';
import { stopChild } from './children.js';
import { pinEngine, pinProcesses } from './cpu-pinning.js';
import { log, now } from './clock.js';
import { distribution, round } from './distribution.js';
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
import { rpcCosts, scrapeRequests, type RequestCounts } from './server-metrics.js';
import { workflowIdForTask } from '../../workflows/task-contract.js';
import { renderCapacity, summarize, type CapacityReport, type CapacityRun, type TargetName } from './capacity-report.js';
import { asyncQueueBundle, replayCosts } from './replay-cost.js';

type History = temporal.api.history.v1.IHistory;

export const CAPACITY_FLAG = '--capacity';
/** Longest wait for a run's tasks under way to finish before the next run on a shared engine. */
const DRAIN_MAX_MS = 60_000;
const USAGE =
  'usage: npm run bench -- --capacity [--rounds N] [--seconds S] [--outstanding N] [--replays N] [--shared-engine] [--cluster [--shards N]] [--workflow-threads N] [--heartbeat-timeout S] [--engine-cpus LIST] [--dev-server-store file|memory] [--cpu-prof DIR] [--out DIR]';

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
      shards: { type: 'string' },
      'workflow-threads': { type: 'string' },
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
  // Rounds alternate which target goes first (b a, a b, b a, …): a machine that warms up or slows
  // down over the run favours neither, and on a shared engine each target follows itself as
  // often as the other.
  const shared = sharedEngine ? await openEngine() : undefined;
  try {
    for (let roundNo = 1; roundNo <= rounds; roundNo++) {
      const order: TargetName[] = roundNo % 2 === 1 ? ['baseline', 'asyncqueue'] : ['asyncqueue', 'baseline'];
      for (const name of order) {
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
            drain: shared !== undefined,
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
    workflowThreads: options.workflowThreads,
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
}

async function measureBaseline(
  bundlePromise: ReturnType<typeof prepareBaseline> & object,
  { engine, receivers, runId, options, sampler, outstanding, seconds, tag, keep, drain }: OneRun,
): Promise<Omit<CapacityRun, 'round' | 'target'> & { finishedIds: string[] }> {
  const { target, stop } = await startBaseline(bundlePromise, engine, receivers, runId, options);
  try {
    const run = await closedLoop(target, sampler, engine.metricsUrls, { outstanding, seconds, tag, drain });
    return { ...run, history: await sampleHistories(engine, run.finishedIds, keep) };
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
}: OneRun): Promise<Omit<CapacityRun, 'round' | 'target'> & { finishedIds: string[] }> {
  const env = { ...asyncQueueEnv(options, engine.address, runId, resources.tmpDir!), TEMPORAL_NAMESPACE: engine.namespace };
  try {
    const { target } = await startAsyncQueue(options, env, sampler, receivers);
    const run = await closedLoop(target, sampler, engine.metricsUrls, { outstanding, seconds, tag, drain });
    return { ...run, history: await sampleHistories(engine, run.finishedIds.map(workflowIdForTask), keep) };
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

/**
 * Keeps `outstanding` tasks under way for `seconds`: each webhook that arrives starts the next
 * task. The first quarter fills the pipeline; completions, latencies, CPU and the server's RPCs
 * (its metrics at `metricsUrls`, when it has them) count over the rest. With `drain`, it then
 * waits (up to DRAIN_MAX_MS) for the tasks still under way to finish, counting none of them.
 */
async function closedLoop(
  target: Target,
  sampler: Sampler,
  metricsUrls: string[],
  { outstanding, seconds, tag, drain }: { outstanding: number; seconds: number; tag: string; drain: boolean },
): Promise<Omit<CapacityRun, 'round' | 'target' | 'history'> & { finishedIds: string[] }> {
  const sentAt = new Map<string, number>();
  const finishedIds: string[] = [];
  let seq = 0;
  let creating = 0;
  let errors = 0;
  let stopped = false;
  const launch = (): void => {
    creating++;
    const at = now();
    void target.create(seq++, tag).then((result) => {
      creating--;
      if (result.ok && result.id !== undefined) sentAt.set(result.id, at);
      else errors++;
    });
  };
  const t0 = now();
  const measureFrom = t0 + (seconds * 1000) / 4;
  const end = t0 + seconds * 1000;
  let window: ReturnType<Sampler['open']> | undefined;
  let requestsAtStart: RequestCounts | undefined;
  const latencies: number[] = [];
  // Every 10 s a line with that interval's completions and CPU per task: a steady state looks flat.
  let interval = { from: t0, done: 0, usage: sampler.open() };
  let completed = 0;
  while (!stopped) {
    const t = now();
    if (window === undefined && t >= measureFrom) {
      window = sampler.open();
      requestsAtStart = await scrapeRequests(metricsUrls);
    }
    if (t >= end) stopped = true;
    if (t - interval.from >= 10_000 || stopped) {
      const usage = interval.usage.close();
      const perTask = Object.entries(usage.procs)
        .map(([name, proc]) => `${name} ${((proc.cpuSec * 1000) / Math.max(1, interval.done)).toFixed(1)}`)
        .join(', ');
      log(
        `  ${tag} +${Math.round((t - t0) / 1000)} s: ${(interval.done / ((t - interval.from) / 1000)).toFixed(1)}/s; ` +
          `CPU ms/task ${perTask}; steal ${usage.stealCpuSec} s`,
      );
      interval = { from: t, done: 0, usage: sampler.open() };
    }
    for (const [id, at] of sentAt) {
      const doneAt = target.completedAt(id);
      if (doneAt === undefined) continue;
      sentAt.delete(id);
      interval.done++;
      if (doneAt >= measureFrom && doneAt < end) {
        completed++;
        latencies.push(doneAt - at);
        finishedIds.push(id);
      }
    }
    // A failed create is replaced too: the loop keeps its concurrency, and the errors are reported.
    for (let i = sentAt.size + creating; !stopped && i < outstanding; i++) launch();
    target.assertAlive();
    await sleep(10);
  }
  interval.usage.close();
  const usage = window!.close();
  const requestsAtEnd = requestsAtStart !== undefined ? await scrapeRequests(metricsUrls) : undefined;
  if (drain) {
    const drainUntil = now() + DRAIN_MAX_MS;
    while ((sentAt.size > 0 || creating > 0) && now() < drainUntil) {
      for (const id of sentAt.keys()) if (target.completedAt(id) !== undefined) sentAt.delete(id);
      await sleep(50);
    }
    log(
      sentAt.size + creating === 0
        ? `  ${tag}: drained`
        : `  ${tag}: ${sentAt.size + creating} tasks still under way after ${DRAIN_MAX_MS / 1000} s; the next run starts beside them`,
    );
  }
  const measuredSec = (end - measureFrom) / 1000;
  return {
    completedPerSec: round(completed / measuredSec, 1) ?? 0,
    completed,
    errors,
    e2eMs: distribution(latencies),
    cpuMsPerTask: Object.fromEntries(
      Object.entries(usage.procs).map(([name, proc]) => [name, round((proc.cpuSec * 1000) / Math.max(1, completed), 1) ?? 0]),
    ),
    machineBusyCores: round(usage.machineBusyCpuSec / Math.max(0.001, usage.seconds), 2) ?? 0,
    stealCores: round(usage.stealCpuSec / Math.max(0.001, usage.seconds), 2) ?? 0,
    // Completions stand for tasks: in a steady closed loop as many start as end.
    rpc:
      requestsAtStart !== undefined && requestsAtEnd !== undefined
        ? rpcCosts(requestsAtStart, requestsAtEnd, completed, measuredSec)
        : null,
    finishedIds,
  };
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
