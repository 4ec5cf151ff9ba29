/**
 * The benchmark's report: the JSON of everything measured, and the markdown summary that is
 * printed and kept beside it (the README's Performance tables are read off it).
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { OutputSummary } from './children.js';
import { log } from './clock.js';
import { STEADY_HOLD_MS, type ConcurrencyResult } from './held-calls.js';
import type { Engine } from './engine.js';
import { describeCpuSplit, type CpuSplit } from './cpu-pinning.js';
import type { Machine } from './machine.js';
import { DEFAULT_POLICY } from './options.js';
import { processName, type ProcUsage } from './process-sampler.js';
import type { StepResult } from './ramp-step.js';
import { TARGET_LOAD_SETTLE_MS, type RampResult } from './ramp.js';
import type { HistoryCosts } from './task-costs.js';
import { costTables } from './report-costs.js';

/** Issue 13's targets, against the minimal raw-Temporal job. */
export const THROUGHPUT_TARGET = 0.95;
export const P99_TARGET = 1.2;

export interface Report {
  startedAt: string;
  mode: 'quick' | 'full';
  engine: Engine['kind'];
  engineStartSec: number;
  /** 1, 5 and 15 min load averages when the run started and ended. */
  loadAverage: { start: number[]; end: number[] };
  options: {
    rates: number[];
    stepSeconds: number;
    big: boolean;
    skip: string[];
    apis: number;
    workers: number;
    /** API and worker in one process, as `npm start` runs them (--one-process). */
    oneProcess: boolean;
    /** `--eager-baseline` (absent in older results). */
    eagerBaseline?: boolean;
    callbackMs: number;
    workerNice: number;
    heartbeatTimeoutSec: number;
    /** Each target ran on an engine of its own, started fresh (false: both on one, --same-server). */
    freshEngines: boolean;
    /** `--engine-cpus`: the engine's CPUs and the clients'; null: everything shares every CPU. */
    cpuSplit: CpuSplit | null;
  };
  machine: Machine;
  settings: Record<string, string | number>;
  asyncqueue: RampResult | null;
  baseline: RampResult | null;
  ratio: number | null;
  costs: { asyncqueue: HistoryCosts | null; baseline: HistoryCosts | null };
  concurrency: ConcurrencyResult[];
  lifetimePeakRssMb: Record<string, number>;
  processOutput: Record<string, OutputSummary>;
  findings: string[];
  wallSeconds: number;
}

function cell(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined) return '—';
  return digits === 0 ? String(Math.round(value)) : value.toFixed(digits);
}

function cpuCell(usage: ProcUsage | undefined, msPerTask: number | undefined): string {
  if (usage === undefined) return '—';
  return `${usage.cpuSec.toFixed(1)} s (${usage.cpuPct}%)${msPerTask !== undefined ? ` · ${msPerTask.toFixed(1)} ms/task` : ''}`;
}

function rampTables(result: RampResult, procNames: Array<[string, string]>): string[] {
  const lines: string[] = [];
  lines.push(
    '| rate/s | sent (/s) | done/s | errors | create p50 | p99 | p99.9 | max | e2e p50 | e2e p99 | drain s | verdict |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  );
  // Refinement steps run after the failing rate; the table reads better in rate order.
  const steps = [...result.steps, ...(result.targetLoad !== null ? [result.targetLoad] : [])].sort(
    (a, b) => a.targetRate - b.targetRate,
  );
  const rateCell = (s: StepResult): string =>
    s === result.targetLoad ? `${s.targetRate} (80 %, ${s.seconds} s)` : String(s.targetRate);
  for (const s of steps) {
    lines.push(
      `| ${rateCell(s)} | ${s.sent} (${s.sentPerSec}) | ${s.completedPerSec} | ${s.errors} | ${cell(s.createMs.p50, 1)} | ${cell(s.createMs.p99, 1)} | ${cell(s.createMs.p999, 1)} | ${cell(s.createMs.max, 1)} | ${cell(s.e2eMs.p50)} | ${cell(s.e2eMs.p99)} | ${s.drainSec} | ${s.sustainable ? 'ok' : `**not sustainable**: ${s.reason}`} |`,
    );
  }
  lines.push('');
  lines.push(
    `| rate/s | ${procNames.map(([, label]) => `${label} CPU`).join(' | ')} | ${procNames.map(([, label]) => `${label} peak RSS MB`).join(' | ')} | other procs CPU s |`,
    `|---:|${procNames.map(() => '---:|').join('')}${procNames.map(() => '---:|').join('')}---:|`,
  );
  for (const s of steps) {
    lines.push(
      `| ${rateCell(s)} | ${procNames.map(([name]) => cpuCell(s.resources.procs[name], s.cpuMsPerTask[name])).join(' | ')} | ${procNames.map(([name]) => cell(s.resources.procs[name]?.peakRssMb)).join(' | ')} | ${s.resources.otherCpuSec} |`,
    );
  }
  return lines;
}

/** Temporal's processes and, on the cluster, PostgreSQL's, as far as the ramp measured them. */
function engineProcs(result: RampResult): Array<[string, string]> {
  const measured = (name: string): boolean => result.steps.some((s) => s.resources.procs[name] !== undefined);
  return [['temporal', 'Temporal'], ...(measured('postgres') ? ([['postgres', 'PostgreSQL']] as Array<[string, string]>) : [])];
}

/**
 * The two targets at the same offered load: AsyncQueue's step after its ramp (80 % of the
 * baseline's limit) and the baseline's own (80 % of its limit: the same rate); else (--quick: no
 * such steps) the highest ramp rate both ran at or below 80 % of the baseline's limit.
 */
function comparableSteps(report: Report): { rate: number; aqStep: StepResult; baseStep: StepResult; exact: boolean } | undefined {
  const aq = report.asyncqueue;
  const base = report.baseline;
  if (aq === null || base === null || base.maxSustainableRate === null) return undefined;
  if (aq.targetLoad !== null && base.targetLoad !== null && aq.targetLoad.targetRate === base.targetLoad.targetRate) {
    return { rate: aq.targetLoad.targetRate, aqStep: aq.targetLoad, baseStep: base.targetLoad, exact: true };
  }
  const limit = 0.8 * base.maxSustainableRate;
  const rates = base.steps
    .filter((s) => s.sustainable && s.targetRate <= limit && aq.steps.some((a) => a.targetRate === s.targetRate))
    .map((s) => s.targetRate)
    .sort((a, b) => a - b);
  const rate = rates.at(-1) ?? base.steps.map((s) => s.targetRate).find((r) => aq.steps.some((a) => a.targetRate === r));
  const aqStep = aq.steps.find((s) => s.targetRate === rate);
  const baseStep = base.steps.find((s) => s.targetRate === rate);
  return rate !== undefined && aqStep !== undefined && baseStep !== undefined
    ? { rate, aqStep, baseStep, exact: false }
    : undefined;
}

/** Why the two ramps have no 80 % step in common. */
function noTargetLoadStep(report: Report): string {
  const outOfTime = [report.asyncqueue, report.baseline].find((r) => r?.targetLoadOutOfTime === true);
  return outOfTime != null
    ? `no 80 % step: the ${outOfTime.target} ramp's time budget was used up`
    : 'no step of its own in this mode';
}

export function renderMarkdown(report: Report): string {
  const m = report.machine;
  const lines: string[] = [];
  lines.push(
    `# AsyncQueue benchmark (${report.mode}${report.engine === 'cluster' ? ', --cluster' : ''}) — ${report.startedAt}`,
    '',
  );
  lines.push(
    `- **Machine**: ${m.nproc} CPUs (${m.cpuModel}), ${m.totalMemoryGiB} GiB RAM, ${m.kernel}`,
    `- **Node** ${m.node}; **Temporal CLI**: ${m.temporalCli}; **server**: ${m.temporalServer}` +
      (report.engineStartSec > 0 ? ` (started in ${report.engineStartSec} s)` : '') +
      (report.options.freshEngines ? '; **a fresh one for each target** (the baseline, then AsyncQueue)' : ''),
    `- **Load average** (1 / 5 / 15 min) at the start ${report.loadAverage.start.join(' / ')}, at the end ${report.loadAverage.end.join(' / ')}`,
    `- **Setup**: ${processesText(report.options)}, receivers in the bench process; ` +
      (report.options.callbackMs > 0 ? `each ramp callback answers after ${report.options.callbackMs} ms; ` : '') +
      describeCpuSplit(report.options.cpuSplit) +
      `open-model arrivals, ${report.options.stepSeconds} s per rate; latencies measured from each request's *scheduled* send time.`,
    `- **Settings**: ${Object.entries(report.settings)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
  );
  if (m.otherActivity.length > 0) {
    lines.push(
      `- **WARNING: other load on this machine while measuring** (numbers are not representative; see "other procs CPU s"): ` +
        m.otherActivity.map((item) => `\`${item}\``).join('; '),
    );
  } else {
    lines.push('- No other AsyncQueue/Temporal/soak processes were running when the bench started.');
  }
  lines.push('', '## Summary', '');
  const aq = report.asyncqueue;
  const base = report.baseline;
  const limitText = (r: RampResult | null): string =>
    r === null
      ? 'not run'
      : `${r.maxSustainableRate === null ? 'none of the rates' : `${r.limitNotReached ? '≥ ' : ''}${r.maxSustainableRate} tasks/s`}` +
        (r.firstUnsustainable !== null ? ` (${r.firstUnsustainable.rate}/s: ${r.firstUnsustainable.reason})` : ` (${r.note})`);
  const met = (ok: boolean): string => (ok ? 'met' : '**not met**');
  lines.push('| | |', '|---|---|');
  lines.push(
    `| Temporal baseline (raw client${report.options.eagerBaseline === true ? ', eager start' : ''}; one activity POSTs the callback, one the webhook; nothing else) | ${limitText(base)} |`,
  );
  lines.push(
    `| AsyncQueue (${report.options.oneProcess ? 'API and worker in one process' : `${report.options.apis} API + ${report.options.workers} worker`}) | ${limitText(aq)} |`,
  );
  if (report.ratio !== null) {
    // A ramp that never failed gives a lower bound only: the ratio is then not a measurement of the target.
    const verdict =
      (aq?.limitNotReached ?? false) || (base?.limitNotReached ?? false)
        ? 'not judged: a ramp did not reach its limit, so this is a bound'
        : met(report.ratio >= THROUGHPUT_TARGET);
    lines.push(
      `| **AsyncQueue / baseline throughput** | **${report.ratio.toFixed(2)}×** (target ≥ ${THROUGHPUT_TARGET}×: ${verdict}) |`,
    );
  }
  const pair = comparableSteps(report);
  if (pair !== undefined) {
    const { rate, aqStep, baseStep, exact } = pair;
    const where = exact
      ? `${rate}/s, 80 % of the baseline's ${base?.maxSustainableRate}/s (${aqStep.seconds} s steps)`
      : `${rate}/s, the ramp step both ran nearest below 80 % of the baseline's ${base?.maxSustainableRate}/s (${noTargetLoadStep(report)}; ${aqStep.seconds} s)`;
    const p99Ratio =
      aqStep.e2eMs.p99 !== null && baseStep.e2eMs.p99 !== null && baseStep.e2eMs.p99 > 0
        ? aqStep.e2eMs.p99 / baseStep.e2eMs.p99
        : null;
    lines.push(
      `| e2e p50 / **p99** at ${where}: AsyncQueue · baseline | ${cell(aqStep.e2eMs.p50)} / **${cell(aqStep.e2eMs.p99)}** ms · ${cell(baseStep.e2eMs.p50)} / **${cell(baseStep.e2eMs.p99)}** ms` +
        (p99Ratio !== null ? ` → **${p99Ratio.toFixed(2)}×** (target ≤ ${P99_TARGET}×: ${met(p99Ratio <= P99_TARGET)})` : '') +
        `${aqStep.sustainable ? '' : ' (AsyncQueue: not sustainable at this rate)'} |`,
      `| create p50 / p99 at the same rate: AsyncQueue (POST /v1/tasks → 202) · baseline (workflow.start) | ${cell(aqStep.createMs.p50, 1)} / ${cell(aqStep.createMs.p99, 1)} ms · ${cell(baseStep.createMs.p50, 1)} / ${cell(baseStep.createMs.p99, 1)} ms |`,
    );
  }
  lines.push('', ...costTables(report));
  if (aq !== null) {
    lines.push('', '## AsyncQueue ramp (POST /v1/tasks → workflow → callback → webhook)', '');
    lines.push(
      'Latencies in ms. *create*: scheduled send → 202. *e2e*: scheduled send → webhook received. *done/s*: webhooks received per second over the last 3/4 of the step (steady state; below the rate = a growing backlog). *drain*: time after the step until all its tasks had their webhook. ' +
        `*80 %*: a step of its own at 80 % of the baseline's limit (of AsyncQueue's own when there is no baseline), run after the ramp and a ${TARGET_LOAD_SETTLE_MS / 1000} s pause for its leftover activity timers.`,
      '',
    );
    const { apis, workers, oneProcess } = report.options;
    const names: Array<[string, string]> = [
      ...Array.from({ length: apis }, (_, i): [string, string] => [
        processName('api', i),
        oneProcess ? 'API + worker' : i === 0 ? 'API' : `API ${i + 1}`,
      ]),
      ...Array.from({ length: oneProcess ? 0 : workers }, (_, i): [string, string] => [
        processName('worker', i),
        i === 0 ? 'worker' : `worker ${i + 1}`,
      ]),
    ];
    lines.push(...rampTables(aq, [...names, ...engineProcs(aq), ['bench', 'bench']]));
    lines.push(
      '',
      "CPU: seconds during the step's load (% of one core) · CPU ms per finished task over load + drain. *bench* = this process (load generator and receivers). *other procs*: busy CPU-seconds of the whole machine not spent by the processes listed." +
        (report.engine === 'cluster'
          ? ' *Temporal*: the four services together; *PostgreSQL*: the postmaster and its backends, whose RSS counts the shared buffers once per backend.'
          : ''),
    );
    if (aq.leftover.notCompleted > 0) {
      lines.push(
        '',
        `**${aq.leftover.notCompleted} task(s) never delivered a webhook** after the final drain: ${aq.leftover.ids.slice(0, 5).join(', ')}`,
      );
      for (const view of aq.leftover.views) lines.push(`- \`${JSON.stringify(view).slice(0, 400)}\``);
    }
  }
  if (report.concurrency.length > 0) {
    const heartbeatSec = report.options.heartbeatTimeoutSec;
    lines.push('', '## Held callbacks on one worker', '');
    lines.push(
      '| N | origins | hold s | created in s | arrival phase s | peak held at once | answered unheld | dispatch p50 / p99 ms | worker RSS before → held → peak MB | KiB per held call | worker CPU | Temporal CPU | while held: worker · Temporal CPU | cancel → close p50 / max ms (n) | outcomes | stuck |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|',
    );
    for (const c of report.concurrency) {
      const w = c.resources.procs.worker;
      const t = c.resources.procs.temporal;
      lines.push(
        `| ${c.n} | ${c.origins} | ${c.holdSec} | ${c.createSec} | ${c.arrivalSec} | ${c.peakHeld} | ${c.answeredAtOnce} | ${cell(c.dispatchMs.p50)} / ${cell(c.dispatchMs.p99)} | ${cell(c.workerRssMb.before)} → ${cell(c.workerRssMb.whenHeld)} → ${cell(c.workerRssMb.peak)} | ${cell(c.workerKbPerHeldCall)} | ${w ? `${w.cpuSec.toFixed(1)} s (${w.cpuPct}%)` : '—'} | ${t ? `${t.cpuSec.toFixed(1)} s (${t.cpuPct}%)` : '—'} | ${cell(c.whileHeldCpuPct.worker)}% · ${cell(c.whileHeldCpuPct.temporal)}% | ${cell(c.cancel.toCloseMs.p50)} / ${cell(c.cancel.toCloseMs.max)} (${c.cancel.sampled - c.cancel.notClosed}/${c.cancel.sampled}) | ${Object.entries(
          c.outcomes,
        )
          .map(([k, v]) => `${k} ${v}`)
          .join(
            ', ',
          )}${Object.keys(c.createErrors).length > 0 ? `; create errors ${JSON.stringify(c.createErrors)}` : ''} | ${c.stuck} |`,
      );
    }
    lines.push(
      '',
      `Heartbeat timeout ${heartbeatSec} s${heartbeatSec * 1000 === DEFAULT_POLICY.heartbeatTimeoutMs ? ' (the default)' : ''}. A cancel reaches a held call through an \`abortHeldCall\` activity the workflow sends to the task queue of the worker holding it. ` +
        '*arrival phase*: run start until every call arrived (or arrivals stalled 5 s); each call is held until then, through the cancels (measured with every other call still held), and at least *hold s*. *answered unheld*: calls that arrived after the arrival phase. ' +
        `*dispatch*: 202 → callback request at the receiver. *peak held*: requests open at the receiver at once. KiB per held call = (worker RSS when held − before) / calls held. CPU over the whole run; *while held*: % of a core during ${STEADY_HOLD_MS / 1000} s with every call open and nothing else going on (mostly heartbeats: one per held call every ${0.8 * heartbeatSec} s).`,
    );
  }
  if (base !== null) {
    lines.push('', '## Temporal baseline ramp (client.workflow.start → POST callback → POST webhook, in-process worker)', '');
    lines.push(
      "Latencies in ms. *create*: scheduled → `workflow.start` returned. *e2e*: scheduled → its webhook received by the same receiver as AsyncQueue's. *done/s* as above. It ran before AsyncQueue's API and worker started; *bench* holds client, worker, load generator and receivers.",
      '',
    );
    lines.push(...rampTables(base, [...engineProcs(base), ['bench', 'bench']]));
  }
  lines.push('', '## Process lifetime peaks (VmHWM)', '');
  lines.push(
    Object.entries(report.lifetimePeakRssMb)
      .map(([name, value]) => `${name} ${value} MB`)
      .join(', ') || '—',
  );
  if (report.findings.length > 0) {
    lines.push('', '## Findings', '');
    for (const finding of report.findings) lines.push(`- ${finding}`);
  }
  lines.push('', `Wall time ${report.wallSeconds} s.`, '');
  return lines.join('\n');
}

/**
 * Writes `<out>/bench-<mode>-<timestamp>.json` and `.md` and prints the markdown. The folder gets
 * a `.gitignore` of its own, so that nothing in it (by default bench-results/ in the repository)
 * is ever committed.
 */
export async function writeReport(report: Report, out: string): Promise<void> {
  const markdown = renderMarkdown(report);
  await mkdir(out, { recursive: true });
  const ignoreFile = path.join(out, '.gitignore');
  if (!existsSync(ignoreFile)) await writeFile(ignoreFile, '# benchmark output: never committed\n*\n');
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const base = path.join(out, `bench-${report.mode}-${stamp}`);
  await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(`${base}.md`, markdown);
  process.stdout.write(`\n${markdown}\n`);
  log(`results: ${base}.md and ${base}.json (the folder ignores itself via its own .gitignore)`);
}

/** The AsyncQueue processes a run used, for the report's setup line. */
function processesText({ apis, workers, oneProcess }: Report['options']): string {
  return oneProcess
    ? 'the API and the worker in one process as `npm start` runs them (`main`, its tasks started eagerly)'
    : `${apis} API and ${workers} worker process(es) (\`api-main\`, \`worker-main\`)`;
}
