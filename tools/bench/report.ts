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
import type { Machine } from './machine.js';
import { DEFAULT_POLICY } from './options.js';
import { processName, type ProcUsage } from './process-sampler.js';
import type { StepResult } from './ramp-step.js';
import { TARGET_LOAD_SETTLE_MS, type RampResult } from './ramp.js';

export interface Report {
  startedAt: string;
  mode: 'quick' | 'full';
  options: {
    rates: number[];
    stepSeconds: number;
    big: boolean;
    skip: string[];
    apis: number;
    workers: number;
    callbackMs: number;
    workerNice: number;
    heartbeatTimeoutSec: number;
  };
  machine: Machine;
  settings: Record<string, string | number>;
  asyncqueue: RampResult | null;
  baseline: RampResult | null;
  ratio: number | null;
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
  const steps = [...result.steps, ...(result.targetLoad !== null ? [result.targetLoad] : [])].sort((a, b) => a.targetRate - b.targetRate);
  const rateCell = (s: StepResult): string => (s === result.targetLoad ? `${s.targetRate} (80 %, ${s.seconds} s)` : String(s.targetRate));
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

/**
 * The create-latency target's load: the step run at 80 % of the ramp's limit, or else (--quick)
 * the highest sustainable ramp step at or below it, or else the lowest.
 */
function stepNearEightyPercent(result: RampResult): StepResult | undefined {
  if (result.targetLoad !== null) return result.targetLoad;
  if (result.maxSustainableRate === null) return undefined;
  const target = 0.8 * result.maxSustainableRate;
  const sustainable = result.steps.filter((s) => s.sustainable).sort((a, b) => a.targetRate - b.targetRate);
  return sustainable.filter((s) => s.targetRate <= target).at(-1) ?? sustainable[0];
}

export function renderMarkdown(report: Report): string {
  const m = report.machine;
  const lines: string[] = [];
  lines.push(`# AsyncQueue benchmark (${report.mode}) — ${report.startedAt}`, '');
  lines.push(
    `- **Machine**: ${m.nproc} CPUs (${m.cpuModel}), ${m.totalMemoryGiB} GiB RAM, ${m.kernel}`,
    `- **Node** ${m.node}; **Temporal CLI**: ${m.temporalCli}; **server**: ${m.temporalServer}`,
    `- **Setup**: ${report.options.apis} API and ${report.options.workers} worker process(es) (\`api-main\`, \`worker-main\`), receivers in the bench process; ` +
      (report.options.callbackMs > 0 ? `each ramp callback answers after ${report.options.callbackMs} ms; ` : '') +
      `open-model arrivals, ${report.options.stepSeconds} s per rate; latencies measured from each request's *scheduled* send time.`,
    `- **Settings**: ${Object.entries(report.settings).map(([k, v]) => `${k}=${v}`).join(', ')}`,
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
  lines.push('| | highest sustainable rate (first failing rate: why) |', '|---|---|');
  lines.push(`| AsyncQueue (${report.options.apis} API + ${report.options.workers} worker) | ${limitText(aq)} |`);
  lines.push(`| Temporal baseline (raw client, no-op activities) | ${limitText(base)} |`);
  if (report.ratio !== null) {
    lines.push(`| **AsyncQueue / engine limit** | **${(report.ratio * 100).toFixed(0)} %**${(aq?.limitNotReached ?? false) || (base?.limitNotReached ?? false) ? ' (a bound: one ramp did not reach its limit)' : ''} |`);
  }
  for (const [label, r] of [['AsyncQueue', aq], ['Temporal baseline', base]] as const) {
    const atEighty = r !== null ? stepNearEightyPercent(r) : undefined;
    if (atEighty === undefined || r?.maxSustainableRate == null) continue;
    const share = `${Math.round((100 * atEighty.targetRate) / r.maxSustainableRate)} %`;
    lines.push(
      `| ${label} create p50 / p99 / p99.9 at ${atEighty.targetRate}/s (${share} of ${r.maxSustainableRate}/s; ${atEighty.created} requests over ${atEighty.seconds} s) | ` +
        `${cell(atEighty.createMs.p50, 1)} / **${cell(atEighty.createMs.p99, 1)}** / ${cell(atEighty.createMs.p999, 1)} ms |`,
    );
  }
  if (aq !== null) {
    lines.push('', '## AsyncQueue ramp (POST /v1/tasks → workflow → callback → webhook)', '');
    lines.push('Latencies in ms. *create*: scheduled send → 202. *e2e*: scheduled send → webhook received. *done/s*: webhooks received per second over the last 3/4 of the step (steady state; below the rate = a growing backlog). *drain*: time after the step until all its tasks had their webhook. ' +
        `*80 %*: a step of its own at 80 % of the limit, run after the ramp and a ${TARGET_LOAD_SETTLE_MS / 1000} s pause for its leftover activity timers.`, '');
    const { apis, workers } = report.options;
    const names: Array<[string, string]> = [
      ...Array.from({ length: apis }, (_, i): [string, string] => [processName('api', i), i === 0 ? 'API' : `API ${i + 1}`]),
      ...Array.from({ length: workers }, (_, i): [string, string] => [processName('worker', i), i === 0 ? 'worker' : `worker ${i + 1}`]),
    ];
    lines.push(...rampTables(aq, [...names, ['temporal', 'Temporal'], ['bench', 'bench']]));
    lines.push('', 'CPU: seconds during the step\'s load (% of one core) · CPU ms per finished task over load + drain. *bench* = this process (load generator and receivers). *other procs*: busy CPU-seconds of the whole machine not spent by the processes listed.');
    if (aq.leftover.notCompleted > 0) {
      lines.push('', `**${aq.leftover.notCompleted} task(s) never delivered a webhook** after the final drain: ${aq.leftover.ids.slice(0, 5).join(', ')}`);
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
        `| ${c.n} | ${c.origins} | ${c.holdSec} | ${c.createSec} | ${c.arrivalSec} | ${c.peakHeld} | ${c.answeredAtOnce} | ${cell(c.dispatchMs.p50)} / ${cell(c.dispatchMs.p99)} | ${cell(c.workerRssMb.before)} → ${cell(c.workerRssMb.whenHeld)} → ${cell(c.workerRssMb.peak)} | ${cell(c.workerKbPerHeldCall)} | ${w ? `${w.cpuSec.toFixed(1)} s (${w.cpuPct}%)` : '—'} | ${t ? `${t.cpuSec.toFixed(1)} s (${t.cpuPct}%)` : '—'} | ${cell(c.whileHeldCpuPct.worker)}% · ${cell(c.whileHeldCpuPct.temporal)}% | ${cell(c.cancel.toCloseMs.p50)} / ${cell(c.cancel.toCloseMs.max)} (${c.cancel.sampled - c.cancel.notClosed}/${c.cancel.sampled}) | ${Object.entries(c.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}${Object.keys(c.createErrors).length > 0 ? `; create errors ${JSON.stringify(c.createErrors)}` : ''} | ${c.stuck} |`,
      );
    }
    lines.push(
      '',
      `Heartbeat timeout ${heartbeatSec} s${heartbeatSec * 1000 === DEFAULT_POLICY.heartbeatTimeoutMs ? ' (the default)' : ''}. A cancel reaches a held call through the worker's cancel watch (one visibility query a second while it holds calls older than a second), so within about 1–2 s plus the signal's round trip. ` +
        '*arrival phase*: run start until every call arrived (or arrivals stalled 5 s); each call is held until then, through the cancels (measured with every other call still held), and at least *hold s*. *answered unheld*: calls that arrived after the arrival phase. ' +
          `*dispatch*: 202 → callback request at the receiver. *peak held*: requests open at the receiver at once. KiB per held call = (worker RSS when held − before) / calls held. CPU over the whole run; *while held*: % of a core during ${STEADY_HOLD_MS / 1000} s with every call open and nothing else going on (mostly heartbeats: one per held call every ${0.8 * heartbeatSec} s, and the cancel watch's query).`,
    );
  }
  if (base !== null) {
    lines.push('', '## Temporal baseline ramp (client.workflow.start → same workflow shape, no-op activities, in-process worker)', '');
    lines.push('Latencies in ms. *create*: scheduled → `workflow.start` returned. *e2e*: scheduled → the no-op "webhook" activity ran. *done/s* as above. The API and AsyncQueue worker were stopped; *bench* holds client, worker and load generator.', '');
    lines.push(...rampTables(base, [['temporal', 'Temporal'], ['bench', 'bench']]));
  }
  lines.push('', '## Process lifetime peaks (VmHWM)', '');
  lines.push(Object.entries(report.lifetimePeakRssMb).map(([name, value]) => `${name} ${value} MB`).join(', ') || '—');
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
