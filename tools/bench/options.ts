/**
 * The benchmark's command line (see main.ts for what each phase measures): every option is checked
 * here, once, with a message that names it, and turned into the sizes and budgets of the run.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/shared/config.js';
import { parseCpuSplit, type CpuSplit } from './cpu-pinning.js';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The policy the API gives a task by default: the baseline workflow uses the same numbers. */
export const DEFAULT_POLICY = loadConfig({}).policy;

export type Phase = 'asyncqueue' | 'baseline' | 'concurrency';

export interface ConcurrencySpec {
  n: number;
  /** Callback origins (receiver ports) the held calls are spread over. */
  origins: number;
  holdMs: number;
  /** Longest arrival phase: calls are held until every one arrived, arrivals stall, or this. */
  arrivalCapMs: number;
}

export interface BenchOptions {
  quick: boolean;
  /** Run against a Temporal cluster on PostgreSQL the bench starts (tools/cluster) instead of the dev server. */
  cluster: boolean;
  /** The cluster's history shards (--cluster only; tools/cluster's default when undefined). */
  shards: number | undefined;
  big: boolean;
  out: string;
  rates: number[];
  stepMs: number;
  /** Longest wait after a step's load for its tasks to finish before the next step. */
  drainMaxMs: number;
  /**
   * Bisection steps between the last sustainable and the first failing rate: three bring a gap of
   * 20/s (the default rates' 60 -> 80) to 2-3/s, ~4 % at 70/s, finer than the 0.95x target; two
   * left 5/s, so two limits near 70/s could only compare as 0.93x or 1.0x.
   */
  refineSteps: number;
  /** Length of the step at 80 % of the limit, in ramp steps (0: none; the nearest ramp step stands in). */
  targetLoadStepFactor: number;
  /** Each ramp stops starting steps once it has run this long. */
  rampBudgetMs: number;
  /** After the last step of a ramp: how long leftover tasks may take before they count as stuck. */
  finalDrainMs: number;
  concurrency: ConcurrencySpec[];
  skip: Set<Phase>;
  /** Whole-run budget (--quick: two minutes, plus a cluster's start); ramps shorten themselves to fit. */
  deadlineMs: number;
  /** Where the API and worker write V8 CPU profiles (--cpu-prof DIR); undefined: no profiling. */
  cpuProfileDir: string | undefined;
  /** Scale-out runs: how many API and worker processes the AsyncQueue ramp uses. */
  apis: number;
  workers: number;
  /**
   * `--one-process`: AsyncQueue as `npm start` runs it, the API and the worker in one process
   * (`dist/src/dev/main.js` on the bench's engine), its tasks started eagerly through the worker's
   * connection. Tracked as the API process; the held-call runs (one worker's own) are skipped.
   */
  oneProcess: boolean;
  /**
   * `--eager-baseline`: the baseline starts its workflows through its worker's own connection with
   * Temporal's eager start, as `npm start` starts AsyncQueue's: like compared with like when
   * `--one-process` measures that shape.
   */
  eagerBaseline: boolean;
  /** How long each ramp callback takes to answer (0: at once); slow callbacks make call slots the limit. */
  callbackMs: number;
  /** ASYNCQUEUE_WORKER_MAX_CONCURRENT_CALLS per worker; undefined: enough for the held-call runs. */
  workerSlots: number | undefined;
  /** ASYNCQUEUE_WORKER_NICE of the worker processes (0: same priority as the API). */
  workerNice: number;
  /** ASYNCQUEUE_WORKER_WORKFLOW_THREADS of the worker processes (the product's default: 1). */
  workflowThreads: number;
  /** ASYNCQUEUE_HEARTBEAT_TIMEOUT for AsyncQueue, and the baseline's activities' heartbeat timeout. */
  heartbeatTimeoutMs: number;
  /**
   * Both targets on one engine (--same-server), the baseline's tasks still in it when AsyncQueue
   * runs; by default each target gets an engine of its own, started fresh (main.ts says why).
   */
  sameServer: boolean;
  /** `--engine-cpus`: the engine on these CPUs, the bench, API and workers on the rest (cpu-pinning.ts); null: all share all. */
  cpuSplit: CpuSplit | null;
  /**
   * Where the dev server keeps its data (`--dev-server-store`): in a SQLite file, as `npm start`
   * runs it (the default), or in memory, as the tests run it. In memory, every commit of the
   * server's SQLite walks its whole page cache, which holds the whole database: a task costs the
   * engine more the more tasks it holds, and more for the target whose tasks hold more bytes
   * (README, Performance).
   */
  devServerStore: DevServerStore;
}

export type DevServerStore = 'file' | 'memory';

const USAGE =
  'usage: node dist/tools/bench/main.js [--quick] [--cluster [--shards N]] [--big] [--out DIR] [--rates 10,20,40] [--step-seconds S] [--skip asyncqueue,baseline,concurrency] [--cpu-prof DIR] [--apis N] [--workers N] [--one-process] [--eager-baseline] [--callback-ms MS] [--worker-slots N] [--worker-nice N] [--workflow-threads N] [--heartbeat-timeout S] [--held 100,5000] [--same-server] [--engine-cpus LIST] [--dev-server-store file|memory]';

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      cluster: { type: 'boolean', default: false },
      shards: { type: 'string' },
      big: { type: 'boolean', default: false },
      out: { type: 'string' },
      rates: { type: 'string' },
      'step-seconds': { type: 'string' },
      skip: { type: 'string' },
      'cpu-prof': { type: 'string' },
      apis: { type: 'string' },
      'one-process': { type: 'boolean' },
      'eager-baseline': { type: 'boolean' },
      workers: { type: 'string' },
      'callback-ms': { type: 'string' },
      'worker-slots': { type: 'string' },
      'worker-nice': { type: 'string' },
      'workflow-threads': { type: 'string' },
      'heartbeat-timeout': { type: 'string' },
      held: { type: 'string' },
      'same-server': { type: 'boolean', default: false },
      'engine-cpus': { type: 'string' },
      'dev-server-store': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const big = values.big ?? false;
  // Fine steps where a 2-core machine's limit lies; coarser beyond. A cluster on PostgreSQL (one
  // fsync'd write per history update, five processes on the same cores) tops out lower than the
  // in-memory dev server, so its ramp starts lower.
  const cluster = values.cluster ?? false;
  const defaultRates = cluster
    ? quick
      ? '3,6,10,15,20,30'
      : '3,5,8,10,12,15,20,25,30,40,60,80'
    : quick
      ? '10,20,30,40,60,80'
      : '10,15,20,25,30,35,40,50,60,80,100,120,160,200';
  const rates = (values.rates ?? defaultRates).split(',').map((item) => Number(item.trim()));
  if (rates.length === 0 || rates.some((rate) => !Number.isFinite(rate) || rate <= 0 || rate > 5000)) {
    throw new Error(`--rates must be positive numbers up to 5000\n${USAGE}`);
  }
  const stepSeconds = Number(values['step-seconds'] ?? (quick ? 8 : 20));
  if (!Number.isFinite(stepSeconds) || stepSeconds < 1 || stepSeconds > 600)
    throw new Error(`--step-seconds must be 1..600\n${USAGE}`);
  const skip = new Set<Phase>();
  for (const item of (values.skip ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    if (item !== 'asyncqueue' && item !== 'baseline' && item !== 'concurrency')
      throw new Error(`--skip: unknown phase "${item}"\n${USAGE}`);
    skip.add(item);
  }
  const count = (name: string, raw: string | undefined, fallback: number, max: number): number => {
    const value = Number(raw ?? fallback);
    if (!Number.isInteger(value) || value < (name === 'callback-ms' || name === 'worker-nice' ? 0 : 1) || value > max) {
      throw new Error(`--${name} must be an integer up to ${max}\n${USAGE}`);
    }
    return value;
  };
  const apis = count('apis', values.apis, 1, 16);
  if (values.shards !== undefined && !cluster) throw new Error(`--shards needs --cluster\n${USAGE}`);
  const shards = values.shards !== undefined ? count('shards', values.shards, 8, 1024) : undefined;
  const workers = count('workers', values.workers, 1, 16);
  const callbackMs = count('callback-ms', values['callback-ms'], 0, 60_000);
  const workerSlots =
    values['worker-slots'] !== undefined ? count('worker-slots', values['worker-slots'], 1, 100_000) : undefined;
  const workerNice = count('worker-nice', values['worker-nice'], 0, 19);
  const workflowThreads = count('workflow-threads', values['workflow-threads'], 1, 64);
  const heartbeatTimeoutMs =
    count('heartbeat-timeout', values['heartbeat-timeout'], DEFAULT_POLICY.heartbeatTimeoutMs / 1000, 3600) * 1000;
  const cpuSplit = values['engine-cpus'] !== undefined ? parseCpuSplit(values['engine-cpus']) : null;
  const externalServer = (process.env.TEMPORAL_ADDRESS?.trim() ?? '') !== '';
  if (cpuSplit !== null && !cluster && externalServer)
    throw new Error(`--engine-cpus pins an engine the bench starts; TEMPORAL_ADDRESS names one it does not\n${USAGE}`);
  const devServerStore = values['dev-server-store'] ?? 'file';
  if (devServerStore !== 'file' && devServerStore !== 'memory')
    throw new Error(`--dev-server-store must be file or memory\n${USAGE}`);
  if (values['dev-server-store'] !== undefined && (cluster || externalServer))
    throw new Error(
      `--dev-server-store applies to the dev server the bench starts, not to --cluster or TEMPORAL_ADDRESS\n${USAGE}`,
    );
  const oneProcess = values['one-process'] ?? false;
  if (oneProcess && (values.apis !== undefined || values.workers !== undefined))
    throw new Error(`--one-process runs one process with the API and the worker; not with --apis or --workers\n${USAGE}`);
  // The held-call runs measure ONE worker process; with more, they would measure how calls spread
  // instead, and in one process with the API they would not measure the worker alone.
  if (workers > 1 || oneProcess) skip.add('concurrency');
  const holdMs = quick ? 10_000 : 30_000;
  const arrivalCapMs = quick ? 15_000 : 120_000;
  const held = values.held?.split(',').map((item) => Number(item.trim()));
  if (held !== undefined && held.some((n) => !Number.isInteger(n) || n < 1 || n > 20_000))
    throw new Error(`--held must list call counts up to 20000\n${USAGE}`);
  const concurrency: ConcurrencySpec[] =
    held !== undefined
      ? // One origin per 200 calls, as the default sizes spread them.
        held.map((n) => ({
          n,
          origins: Math.max(1, Math.round(n / 200)),
          holdMs,
          arrivalCapMs: n > 1000 ? 240_000 : arrivalCapMs,
        }))
      : quick
        ? [{ n: 100, origins: 1, holdMs, arrivalCapMs }]
        : [
            { n: 100, origins: 1, holdMs, arrivalCapMs },
            // One app endpoint (the common case) and the same load spread over 8 origins: the worker
            // keeps one keep-alive pool per origin, so the two can differ.
            { n: 1000, origins: 1, holdMs, arrivalCapMs },
            { n: 1000, origins: 8, holdMs, arrivalCapMs },
            ...(big ? [{ n: 5000, origins: 25, holdMs, arrivalCapMs: 240_000 }] : []),
          ];
  return {
    quick,
    cluster,
    big,
    out: path.resolve(values.out ?? path.join(REPO_ROOT, 'bench-results')),
    rates,
    stepMs: stepSeconds * 1000,
    drainMaxMs: quick ? 4_000 : 45_000,
    refineSteps: quick ? 0 : 3,
    targetLoadStepFactor: quick ? 0 : 3,
    // Full: room for the 40 s pause after each failed step (ramp.ts) besides the steps themselves,
    // and for the 80 % step after three failed probes (~10 steps 210 s, a failure and three
    // failed probes 4 x 60 s, the 80 % step with its pause 100 s: ~550 s). At 480 s a ramp whose
    // probes all failed had no 80 % step (2026-12-05 15:51), and the p99 target went unjudged.
    rampBudgetMs: quick ? 30_000 : 600_000,
    finalDrainMs: quick ? 5_000 : 90_000,
    deadlineMs: quick ? 120_000 : Number.POSITIVE_INFINITY,
    concurrency,
    skip,
    cpuProfileDir: values['cpu-prof'] !== undefined ? path.resolve(values['cpu-prof']) : undefined,
    apis,
    workers,
    oneProcess,
    eagerBaseline: values['eager-baseline'] ?? false,
    shards,
    callbackMs,
    workerSlots,
    workerNice,
    workflowThreads,
    heartbeatTimeoutMs,
    sameServer: values['same-server'] ?? false,
    cpuSplit,
    devServerStore,
  };
}
