/**
 * The capacity comparison's figures (capacity.ts runs it): per-round ratios, the ratio of the
 * medians, and the markdown table. Pure, so that the arithmetic the README quotes is tested.
 */
import { distribution, round, type Distribution } from './distribution.js';
import { describeCpuSplit, type CpuSplit } from './cpu-pinning.js';
import type { ReplayCost } from './replay-cost.js';
import type { HistoryCosts } from './task-costs.js';
import { isPoll, STORE_HOUSEKEEPING_PER_TASK, type RpcCosts } from './server-metrics.js';
import type { LatencyStep } from './latency-step.js';

export type TargetName = 'baseline' | 'asyncqueue';

export interface CapacityRun {
  round: number;
  target: TargetName;
  /** Completions per second over the run's last three quarters. */
  completedPerSec: number;
  completed: number;
  errors: number;
  /** Create sent → webhook received, ms, of the tasks completed in the measured window. */
  e2eMs: Distribution;
  /** CPU ms per completed task in the measured window, per process (group). */
  cpuMsPerTask: Record<string, number>;
  /** Whole machine: busy CPU seconds per second of the window (2 = both cores). */
  machineBusyCores: number;
  /** Of those, taken by the hypervisor for other guests: a run with much of it measured a slower machine. */
  stealCores: number;
  /** A sample of the histories of tasks done in the window (events by type, bytes); null: not read. */
  history: HistoryCosts | null;
  /** The server's RPCs, visibility writes and history-store requests per task done in the window; null or absent: no metrics. */
  rpc?: RpcCosts | null;
  /** `--latency-step`: the run's fixed-rate step at 80 % of the baseline's capacity; null: no rate known; absent: not run. */
  latency?: LatencyStep | null;
}

export interface CapacityReport {
  startedAt: string;
  engine: string;
  rounds: number;
  seconds: number;
  outstanding: number;
  /**
   * One engine for every run (`--shared-engine`), the targets taking turns on it, instead of a
   * fresh one per run; absent in older results (a fresh one per run).
   */
  sharedEngine?: boolean;
  /** `--latency-step`: each run ended with a step at 80 % of the baseline's capacity. Absent in older results. */
  latencyStep?: boolean;
  workflowThreads: number;
  /** `--one-process`: AsyncQueue's API and worker in one process (its CPU in the `api` column). Absent in older results. */
  oneProcess?: boolean;
  /** `--eager-baseline`: the baseline's starts were eager too. Absent in older results. */
  eagerBaseline?: boolean;
  /** `--engine-cpus`: the engine's CPUs and the clients'; null: everything shares every CPU. */
  cpuSplit: CpuSplit | null;
  loadAverage: { start: number[]; end: number[] };
  runs: CapacityRun[];
  /** The workflow code's CPU per task, the runs' histories replayed (replay-cost.ts); null: not run. */
  replay: Record<TargetName, ReplayCost | null> | null;
  /** AsyncQueue's completions/s over the baseline's, per round. */
  roundRatios: number[];
  medianPerSec: Record<TargetName, number | null>;
  /** Of the medians. */
  ratio: number | null;
  /**
   * The engine's own CPU per task (Temporal's processes and PostgreSQL), median of each target's
   * runs, and the baseline's over AsyncQueue's: the throughput ratio where the engine alone is
   * the limit (its own machines, as in production). Null without per-run readings.
   */
  engineCpuMsPerTask: Record<TargetName, number | null>;
  engineRatio: number | null;
  /**
   * The same, per round (the baseline's engine CPU per task over AsyncQueue's in that round), and
   * their median: runs side by side compared with each other, so a slower engine or a slower
   * hour weighs on both sides of a ratio, not on one target's median. Empty and null without
   * per-run readings; absent in older results.
   */
  roundEngineRatios?: number[];
  medianRoundEngineRatio?: number | null;
  /**
   * With `--latency-step`: per round, AsyncQueue's e2e p99 over the baseline's at the same rate
   * (80 % of the baseline's capacity), and their median; the issue's target is ≤ 1.2×.
   */
  roundP99Ratios?: number[];
  medianRoundP99Ratio?: number | null;
  /**
   * With `--latency-step`: each target's e2e p99 over all its tasks of the rounds whose two steps
   * ran at one rate, and AsyncQueue's over the baseline's. Steadier than the rounds' median ratio,
   * whose every term is a step's ten slowest tasks. Null without samples (older results).
   */
  pooledP99?: { baseline: Distribution; asyncqueue: Distribution; ratio: number | null } | null;
}

function pooledP99(samples: Record<TargetName, number[]>, rounds: number): CapacityReport['pooledP99'] {
  if (rounds === 0) return null;
  const baseline = distribution(samples.baseline);
  const asyncqueue = distribution(samples.asyncqueue);
  const ratio =
    baseline.p99 !== null && asyncqueue.p99 !== null && baseline.p99 > 0 ? round(asyncqueue.p99 / baseline.p99, 3) : null;
  return { baseline, asyncqueue, ratio };
}

/** The process groups that make up the engine (engine.ts): the dev server's is `temporal` alone. */
const ENGINE_GROUPS = ['temporal', 'postgres'];

function median(values: number[], digits = 2): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return round(sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2, digits);
}

/** What summarize() works out from the runs. */
type DerivedField =
  | 'roundRatios'
  | 'medianPerSec'
  | 'ratio'
  | 'engineCpuMsPerTask'
  | 'engineRatio'
  | 'roundEngineRatios'
  | 'medianRoundEngineRatio'
  | 'roundP99Ratios'
  | 'medianRoundP99Ratio'
  | 'pooledP99';

export function summarize(runs: CapacityRun[], meta: Omit<CapacityReport, 'runs' | DerivedField>): CapacityReport {
  const perSec = (name: TargetName): number[] => runs.filter((r) => r.target === name).map((r) => r.completedPerSec);
  const roundRatios: number[] = [];
  const roundEngineRatios: number[] = [];
  const roundP99Ratios: number[] = [];
  const pooled: Record<TargetName, number[]> = { baseline: [], asyncqueue: [] };
  let pooledRounds = 0;
  for (let roundNo = 1; roundNo <= meta.rounds; roundNo++) {
    const base = runs.find((r) => r.round === roundNo && r.target === 'baseline');
    const aq = runs.find((r) => r.round === roundNo && r.target === 'asyncqueue');
    if (base === undefined || aq === undefined) continue;
    if (base.completedPerSec > 0) roundRatios.push(round(aq.completedPerSec / base.completedPerSec, 3) ?? 0);
    const baseEngine = engineMsPerTask(base);
    const aqEngine = engineMsPerTask(aq);
    if (baseEngine !== null && aqEngine !== null && aqEngine > 0) roundEngineRatios.push(round(baseEngine / aqEngine, 3) ?? 0);
    const baseP99 = base.latency?.e2eMs.p99;
    const aqP99 = aq.latency?.e2eMs.p99;
    // Only steps at the same rate compare.
    if (base.latency?.rate === aq.latency?.rate && baseP99 != null && aqP99 != null && baseP99 > 0)
      roundP99Ratios.push(round(aqP99 / baseP99, 3) ?? 0);
    const baseSamples = base.latency?.e2eSamplesMs;
    const aqSamples = aq.latency?.e2eSamplesMs;
    if (base.latency?.rate === aq.latency?.rate && baseSamples !== undefined && aqSamples !== undefined) {
      pooled.baseline.push(...baseSamples);
      pooled.asyncqueue.push(...aqSamples);
      pooledRounds++;
    }
  }
  const medianPerSec = { baseline: median(perSec('baseline')), asyncqueue: median(perSec('asyncqueue')) };
  const ratio =
    medianPerSec.baseline !== null && medianPerSec.asyncqueue !== null && medianPerSec.baseline > 0
      ? round(medianPerSec.asyncqueue / medianPerSec.baseline, 3)
      : null;
  const engineCpu = (name: TargetName): number | null =>
    median(
      runs
        .filter((r) => r.target === name)
        .map(engineMsPerTask)
        .filter((ms): ms is number => ms !== null),
    );
  const engineCpuMsPerTask = { baseline: engineCpu('baseline'), asyncqueue: engineCpu('asyncqueue') };
  const engineRatio =
    engineCpuMsPerTask.baseline !== null && engineCpuMsPerTask.asyncqueue !== null && engineCpuMsPerTask.asyncqueue > 0
      ? round(engineCpuMsPerTask.baseline / engineCpuMsPerTask.asyncqueue, 3)
      : null;
  return {
    ...meta,
    runs,
    roundRatios,
    medianPerSec,
    ratio,
    engineCpuMsPerTask,
    engineRatio,
    roundEngineRatios,
    // Three places, as the ratios: 0.947 must not read as the target's 0.95.
    medianRoundEngineRatio: median(roundEngineRatios, 3),
    ...(meta.latencyStep === true
      ? { roundP99Ratios, medianRoundP99Ratio: median(roundP99Ratios, 3), pooledP99: pooledP99(pooled, pooledRounds) }
      : {}),
  };
}

/** The engine's CPU per task in one run (its process groups summed); null: not measured. */
function engineMsPerTask(run: CapacityRun): number | null {
  if (!ENGINE_GROUPS.some((g) => run.cpuMsPerTask[g] !== undefined)) return null;
  return ENGINE_GROUPS.reduce((sum, g) => sum + (run.cpuMsPerTask[g] ?? 0), 0);
}

export function renderCapacity(report: CapacityReport): string {
  const groups = [...new Set(report.runs.flatMap((r) => Object.keys(r.cpuMsPerTask)))];
  const lines = [
    `# Capacity, closed loop — ${report.startedAt}`,
    '',
    `${report.engine}, ${report.sharedEngine === true ? 'one engine for every run (the targets take turns on it, each run drained before the next)' : 'a fresh engine per run'}; ` +
      `${report.outstanding} tasks always under way, ${report.seconds} s per run ` +
      `(the last three quarters measured); workflow threads ${report.workflowThreads}; ` +
      (report.oneProcess === true
        ? 'AsyncQueue as `npm start` runs it: the API and the worker in one process (its CPU under *api*), tasks started eagerly; '
        : '') +
      (report.eagerBaseline === true ? "the baseline's starts eager too, through its worker's connection; " : '') +
      describeCpuSplit(report.cpuSplit) +
      `load average at the start ${report.loadAverage.start.join(' / ')}.`,
    '',
    `| round | target | done/s | errors | e2e p50 ms | e2e p99 ms | busy cores (steal) | events/task | ${groups.map((g) => `${g} CPU ms/task`).join(' | ')} |`,
    `|---:|---|---:|---:|---:|---:|---:|---:|${groups.map(() => '---:').join('|')}|`,
    ...report.runs.map(
      (r) =>
        `| ${r.round} | ${r.target} | ${r.completedPerSec} | ${r.errors} | ${r.e2eMs.p50 ?? '—'} | ${r.e2eMs.p99 ?? '—'} | ` +
        `${r.machineBusyCores} (${r.stealCores}) | ${r.history?.eventsPerTask ?? '—'} | ${groups.map((g) => r.cpuMsPerTask[g] ?? '—').join(' | ')} |`,
    ),
    '',
    ...report.runs.flatMap((r) =>
      r.history === null
        ? []
        : [
            `- round ${r.round} ${r.target}, history events per task (${r.history.sampled} read): ` +
              Object.entries(r.history.eventsByType)
                .map(([type, n]) => `${type} ${n}`)
                .join(', '),
          ],
    ),
    ...report.runs.flatMap((r) => (r.rpc == null ? [] : [`- round ${r.round} ${r.target}, ${renderRpcs(r.rpc)}`])),
    '',
    ...renderReplay(report.replay),
    `Median: baseline ${report.medianPerSec.baseline ?? '—'}/s, AsyncQueue ${report.medianPerSec.asyncqueue ?? '—'}/s → ` +
      `**${report.ratio ?? '—'}×** (per round: ${report.roundRatios.join(', ') || '—'}; target ≥ 0.95×).`,
    ...(report.engineRatio === null
      ? []
      : [
          '',
          `The engine's own CPU per task (${ENGINE_GROUPS.join(' + ')}, medians): baseline ${report.engineCpuMsPerTask.baseline} ms, ` +
            `AsyncQueue ${report.engineCpuMsPerTask.asyncqueue} ms → where the engine alone is the limit, it serves ` +
            `**${report.engineRatio}×** as many AsyncQueue tasks as baseline ones` +
            (report.roundEngineRatios === undefined || report.roundEngineRatios.length === 0
              ? '.'
              : `; per round ${report.roundEngineRatios.join(', ')}, median **${report.medianRoundEngineRatio}×**.`),
        ]),
    ...renderLatencySteps(report),
  ];
  return lines.join('\n');
}

/** The latency steps: a row per run, each round's p99 ratio and their median (target ≤ 1.2×). */
function renderLatencySteps(report: CapacityReport): string[] {
  if (report.latencyStep !== true) return [];
  const rows = report.runs.map((r) =>
    r.latency == null
      ? `| ${r.round} | ${r.target} | — | — | — | — | no rate known |`
      : `| ${r.round} | ${r.target} | ${r.latency.rate} | ${r.latency.completedPerSec} | ${r.latency.e2eMs.p50 ?? '—'} | ` +
        `${r.latency.e2eMs.p99 ?? '—'} | ${r.latency.held ? 'held' : `not held: ${r.latency.reason}`} |`,
  );
  return [
    '',
    `At 80 % of the baseline's capacity (the baseline's closed loop measured last), ${report.seconds} s per step:`,
    '',
    '| round | target | rate/s | done/s | e2e p50 ms | e2e p99 ms | verdict |',
    '|---:|---|---:|---:|---:|---:|---|',
    ...rows,
    '',
    `AsyncQueue's e2e p99 over the baseline's, per round: ${report.roundP99Ratios?.join(', ') || '—'}; ` +
      `median **${report.medianRoundP99Ratio ?? '—'}×** (target ≤ 1.2×).` +
      (report.pooledP99 != null
        ? ` Pooled over those rounds' steps (${report.pooledP99.asyncqueue.n} and ${report.pooledP99.baseline.n} tasks): ` +
          `AsyncQueue's e2e p50/p99 ${report.pooledP99.asyncqueue.p50 ?? '—'}/${report.pooledP99.asyncqueue.p99 ?? '—'} ms, ` +
          `the baseline's ${report.pooledP99.baseline.p50 ?? '—'}/${report.pooledP99.baseline.p99 ?? '—'} ms → ` +
          `**${report.pooledP99.ratio ?? '—'}×**.`
        : ''),
  ];
}

/** Per task: requests by service (long polls apart), the frontend's by operation, visibility writes, history-store requests. */
function renderRpcs(rpc: RpcCosts): string {
  const list = (record: Record<string, number>): string =>
    Object.entries(record)
      .filter(([, n]) => n > 0)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, n]) => `${name} ${n}`)
      .join(', ');
  const frontend = Object.fromEntries(Object.entries(rpc.frontendPerTask).filter(([operation]) => !isPoll(operation)));
  return (
    `server RPCs per task: ${list(rpc.perTaskByService)} (frontend: ${list(frontend)}; ` +
    `long polls ${rpc.pollsPerSec}/s); visibility writes per task: ${list(rpc.visibilityWritesPerTask ?? {}) || '—'}; ` +
    `history-store requests per task: ${list(Object.fromEntries(Object.entries(rpc.storePerTask ?? {}).filter(([, n]) => n >= STORE_HOUSEKEEPING_PER_TASK))) || '—'}`
  );
}

function renderReplay(replay: CapacityReport['replay']): string[] {
  if (replay === null) return [];
  const line = (name: TargetName, label: string): string => {
    const cost = replay[name];
    return cost === null
      ? `${label} —`
      : `${label} ${cost.bestCpuMsPerTask} ms (rounds: ${cost.cpuMsPerTask.join(', ')}; ${cost.histories} histories)`;
  };
  const best = (name: TargetName): number | null => replay[name]?.bestCpuMsPerTask ?? null;
  const base = best('baseline');
  const aq = best('asyncqueue');
  const ratio = base !== null && aq !== null && base > 0 ? ` → AsyncQueue ${round(aq / base, 2)}× the baseline's` : '';
  return [
    `Workflow code, the histories replayed (CPU per task, best round of ${replay.asyncqueue?.cpuMsPerTask.length ?? replay.baseline?.cpuMsPerTask.length ?? 0}, ` +
      `${replay.asyncqueue?.replays ?? replay.baseline?.replays ?? 0} replays each): ${line('baseline', 'baseline')}, ` +
      `${line('asyncqueue', 'AsyncQueue')}${ratio}.`,
    '',
  ];
}
