/**
 * The benchmark's capacity comparison (tools/bench/capacity-report.ts): the ratio the README
 * quotes is the medians' ratio, each round's ratio pairs the runs of that round, and a round
 * missing a target states no ratio rather than a wrong one; the engine's own CPU per task gives
 * the ratio where the engine alone is the limit, per round too; the latency steps of a round run
 * at one rate and pair their p99s; `--engine-cpus` splits the machine's CPUs (for
 * the ramps too, but only for an engine the bench starts); the dev server keeps its data in a
 * file unless asked for memory; the
 * server's counters (RPCs, visibility writes, history-store requests) become per-task costs;
 * a ramp's steps tag their tasks apart even when a rate comes twice.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderCapacity, summarize, type CapacityRun } from '../tools/bench/capacity-report.js';
import { LatencyStepRates } from '../tools/bench/latency-step.js';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { parseCpuSplit, pinProcesses } from '../tools/bench/cpu-pinning.js';
import { parseOptions } from '../tools/bench/options.js';
import { distribution } from '../tools/bench/distribution.js';
import { rpcCosts, type RequestCounts } from '../tools/bench/server-metrics.js';
import { StepTags } from '../tools/bench/ramp.js';
import { roundOrder } from '../tools/bench/capacity.js';
import { withEnv } from './support/environment.js';

const run = (round: number, target: CapacityRun['target'], completedPerSec: number): CapacityRun => ({
  round,
  target,
  completedPerSec,
  completed: completedPerSec * 30,
  errors: 0,
  e2eMs: distribution([100, 200, 300]),
  cpuMsPerTask: target === 'baseline' ? { bench: 18, temporal: 25 } : { bench: 2, temporal: 26, api: 4, worker: 17 },
  machineBusyCores: 1.9,
  stealCores: 0.1,
  history:
    target === 'baseline'
      ? null
      : {
          sampled: 20,
          open: 0,
          eventsPerTask: 20,
          eventsByType: { WORKFLOW_TASK_COMPLETED: 3, WORKFLOW_TASK_TIMED_OUT: 0.5 },
          visibilityWritesPerTask: 5,
          historyBytesPerTask: 6700,
          errors: [],
        },
});

const meta = {
  startedAt: '2026-12-02T00:00:00.000Z',
  engine: 'dev-server',
  rounds: 3,
  seconds: 60,
  outstanding: 40,
  workflowThreads: 1,
  cpuSplit: null,
  loadAverage: { start: [0.5, 0.4, 0.3], end: [1.9, 1.2, 0.8] },
  replay: null,
};

describe('bench capacity report', () => {
  it('states the ratio of the medians and one ratio per round', () => {
    const report = summarize(
      [
        run(1, 'baseline', 40),
        run(1, 'asyncqueue', 36),
        run(2, 'asyncqueue', 50),
        run(2, 'baseline', 50),
        run(3, 'baseline', 44),
        run(3, 'asyncqueue', 33),
      ],
      meta,
    );
    assert.deepEqual(report.medianPerSec, { baseline: 44, asyncqueue: 36 });
    assert.equal(report.ratio, 0.818);
    assert.deepEqual(report.roundRatios, [0.9, 1, 0.75]);
  });

  it("pairs each round's runs for the engine's CPU per task too, and says when one engine served every run", () => {
    const withEngine = (r: CapacityRun, temporal: number): CapacityRun => ({
      ...r,
      cpuMsPerTask: { ...r.cpuMsPerTask, temporal },
    });
    const report = summarize(
      [
        withEngine(run(1, 'baseline', 40), 16),
        withEngine(run(1, 'asyncqueue', 38), 16),
        withEngine(run(2, 'asyncqueue', 36), 20),
        withEngine(run(2, 'baseline', 38), 18),
        withEngine(run(3, 'baseline', 44), 14),
        withEngine(run(3, 'asyncqueue', 41), 15),
      ],
      { ...meta, sharedEngine: true },
    );
    // 16/16, 18/20, 14/15: the median of the pairs, where the medians' ratio (16/16) says 1.
    assert.deepEqual(report.roundEngineRatios, [1, 0.9, 0.933]);
    assert.equal(report.medianRoundEngineRatio, 0.933);
    assert.equal(report.engineRatio, 1);
    const markdown = renderCapacity(report);
    assert.match(markdown, /dev-server, one engine for every run \(the targets take turns on it/);
    assert.match(markdown, /per round 1, 0\.9, 0\.933, median \*\*0\.933×\*\*/);
    // A run without the engine's reading leaves its round out of the pairs.
    const partial = summarize([run(1, 'baseline', 40), { ...run(1, 'asyncqueue', 38), cpuMsPerTask: { worker: 17 } }], {
      ...meta,
      rounds: 1,
    });
    assert.deepEqual(partial.roundEngineRatios, []);
    assert.equal(partial.medianRoundEngineRatio, null);
    assert.match(renderCapacity(partial), /a fresh engine per run/);
  });

  it('steps both targets of a round at 80 % of the baseline capacity measured last, and pairs their p99s', () => {
    const rates = new LatencyStepRates();
    // Round 1 (baseline first): its own capacity; AsyncQueue's step then takes the same rate.
    assert.equal(rates.rateFor(1, 50), 40);
    assert.equal(rates.rateFor(1), 40);
    // Round 2 (AsyncQueue first): round 1's baseline, kept for round 2's baseline whatever it measured.
    assert.equal(rates.rateFor(2), 40);
    assert.equal(rates.rateFor(2, 45), 40);
    assert.equal(rates.rateFor(3, 47.3), 37.8);
    assert.equal(new LatencyStepRates().rateFor(1), null);
    const step = (rate: number, p99: number, held = true): CapacityRun['latency'] => ({
      rate,
      e2eMs: distribution([p99 / 2, p99]),
      completedPerSec: rate,
      held,
      reason: held ? 'ok' : 'completions 30/s = 80% of arrivals',
      e2eSamplesMs: [p99 / 2, p99],
    });
    const report = summarize(
      [
        { ...run(1, 'baseline', 50), latency: step(40, 500) },
        { ...run(1, 'asyncqueue', 48), latency: step(40, 550) },
        { ...run(2, 'asyncqueue', 47), latency: step(40, 900, false) },
        { ...run(2, 'baseline', 45), latency: step(40, 600) },
        { ...run(4, 'asyncqueue', 45), latency: step(36, 500) },
        { ...run(4, 'baseline', 45), latency: step(38, 400) },
        { ...run(3, 'baseline', 45), latency: step(36, 400) },
        { ...run(3, 'asyncqueue', 44), latency: null },
      ],
      { ...meta, rounds: 4, latencyStep: true },
    );
    // Round 3 has one step, round 4's two rates differ (steps at different rates do not compare).
    assert.deepEqual(report.roundP99Ratios, [1.1, 1.5]);
    assert.equal(report.medianRoundP99Ratio, 1.3);
    const markdown = renderCapacity(report);
    assert.match(markdown, /\| 1 \| asyncqueue \| 40 \| 40 \| 275 \| 550 \| held \|/);
    assert.match(markdown, /\| 2 \| asyncqueue \| 40 \| 40 \| 450 \| 900 \| not held: completions 30\/s = 80% of arrivals \|/);
    assert.match(markdown, /\| 3 \| asyncqueue \| — \| — \| — \| — \| no rate known \|/);
    assert.match(markdown, /per round: 1\.1, 1\.5; median \*\*1\.3×\*\* \(target ≤ 1\.2×\)/);
    // Pooled: rounds 1 and 2 only (3 lacks a step, 4's rates differ): AsyncQueue 275, 450, 550,
    // 900 ms, the baseline 250, 300, 500, 600 ms.
    assert.equal(report.pooledP99?.asyncqueue.n, 4);
    assert.equal(report.pooledP99?.asyncqueue.p99, 900);
    assert.equal(report.pooledP99?.baseline.p99, 600);
    assert.equal(report.pooledP99?.ratio, 1.5);
    assert.match(
      markdown,
      /Pooled over those rounds' steps \(4 and 4 tasks\): AsyncQueue's e2e p50\/p99 450\/900 ms, the baseline's 300\/600 ms → \*\*1\.5×\*\*/,
    );
    // Without the flag, no latency section.
    const plain = summarize([run(1, 'baseline', 40), run(1, 'asyncqueue', 38)], { ...meta, rounds: 1 });
    assert.equal(plain.roundP99Ratios, undefined);
    assert.doesNotMatch(renderCapacity(plain), /80 % of the baseline/);
  });

  it('takes the middle two of an even number of runs, and skips a round that lacks a target', () => {
    const report = summarize([run(1, 'baseline', 40), run(1, 'asyncqueue', 30), run(2, 'baseline', 50)], { ...meta, rounds: 2 });
    assert.deepEqual(report.medianPerSec, { baseline: 45, asyncqueue: 30 });
    assert.deepEqual(report.roundRatios, [0.75]);
    // Rounded for the report: no 42.900000000000006/s.
    const odd = summarize([run(1, 'asyncqueue', 42.1), run(2, 'asyncqueue', 43.7)], { ...meta, rounds: 2 });
    assert.equal(odd.medianPerSec.asyncqueue, 42.9);
  });

  it('states no ratio when a target has no run', () => {
    const report = summarize([run(1, 'asyncqueue', 30)], { ...meta, rounds: 1 });
    assert.equal(report.ratio, null);
    assert.match(renderCapacity(report), /baseline —\/s, AsyncQueue 30\/s → \*\*—×\*\*/);
  });

  it('renders a row per run with each process group it measured', () => {
    const markdown = renderCapacity(summarize([run(1, 'baseline', 40), run(1, 'asyncqueue', 38)], { ...meta, rounds: 1 }));
    assert.match(markdown, /\| 1 \| baseline \| 40 \| 0 \| 200 \|/);
    assert.match(markdown, /worker CPU ms\/task/);
    assert.match(markdown, /\| 1 \| asyncqueue \| 38 .*\| 1\.9 \(0\.1\) \| 20 \| 2 \| 26 \| 4 \| 17 \|/);
    assert.match(
      markdown,
      /round 1 asyncqueue, history events per task \(20 read\): WORKFLOW_TASK_COMPLETED 3, WORKFLOW_TASK_TIMED_OUT 0\.5/,
    );
    assert.doesNotMatch(markdown, /round 1 baseline, history/);
    assert.match(markdown, /\*\*0\.95×\*\*/);
  });

  it('states the replayed workflow cost per target, its best round and their ratio, or nothing when not run', () => {
    const replay = {
      baseline: { histories: 40, replays: 1000, cpuMsPerTask: [4.4, 4.1, 4.6], bestCpuMsPerTask: 4.1 },
      asyncqueue: { histories: 40, replays: 1000, cpuMsPerTask: [5.9, 5.2, 5.5], bestCpuMsPerTask: 5.2 },
    };
    const markdown = renderCapacity(
      summarize([run(1, 'baseline', 40), run(1, 'asyncqueue', 38)], { ...meta, rounds: 1, replay }),
    );
    assert.match(markdown, /best round of 3, 1000 replays each\): baseline 4\.1 ms \(rounds: 4\.4, 4\.1, 4\.6; 40 histories\)/);
    assert.match(markdown, /AsyncQueue 5\.2 ms \(rounds: 5\.9, 5\.2, 5\.5; 40 histories\) → AsyncQueue 1\.27× the baseline's/);
    const oneSided = renderCapacity(
      summarize([run(1, 'asyncqueue', 38)], { ...meta, rounds: 1, replay: { ...replay, baseline: null } }),
    );
    assert.match(oneSided, /baseline —, AsyncQueue 5\.2 ms/);
    assert.doesNotMatch(oneSided, /the baseline's/);
    assert.doesNotMatch(renderCapacity(summarize([run(1, 'asyncqueue', 38)], { ...meta, rounds: 1 })), /replayed/);
  });

  it("turns the server's counters into per-task costs: RPCs by service, long polls apart, visibility writes and store requests", () => {
    const before: RequestCounts = new Map([
      ['frontend|StartWorkflowExecution', 100],
      ['frontend|PollWorkflowTaskQueue', 500],
      ['history-store|GetNamespace', 7],
    ]);
    const after: RequestCounts = new Map([
      ['frontend|StartWorkflowExecution', 300],
      ['frontend|PollWorkflowTaskQueue', 1100],
      ['history|RecordWorkflowTaskStarted', 600],
      ['visibility-store|RecordWorkflowExecutionClosed', 200],
      ['history-store|UpdateWorkflowExecution', 1500],
      ['history-store|GetNamespace', 7],
    ]);
    const costs = rpcCosts(before, after, 200, 30);
    assert.deepEqual(costs.perTaskByService, { frontend: 1, history: 3 });
    assert.deepEqual(costs.frontendPerTask, { StartWorkflowExecution: 1, PollWorkflowTaskQueue: 3 });
    assert.equal(costs.pollsPerSec, 20);
    assert.deepEqual(costs.visibilityWritesPerTask, { RecordWorkflowExecutionClosed: 1 });
    // A counter that did not move is no cost of these tasks.
    assert.deepEqual(costs.storePerTask, { UpdateWorkflowExecution: 7.5 });
    const markdown = renderCapacity(
      summarize([{ ...run(1, 'baseline', 40), rpc: costs }, run(1, 'asyncqueue', 38)], { ...meta, rounds: 1 }),
    );
    assert.match(
      markdown,
      /round 1 baseline, server RPCs per task: frontend 1, history 3 \(frontend: StartWorkflowExecution 1; long polls 20\/s\); visibility writes per task: RecordWorkflowExecutionClosed 1; history-store requests per task: UpdateWorkflowExecution 7\.5/,
    );
    assert.doesNotMatch(markdown, /round 1 asyncqueue, server RPCs/);
  });

  it("states the engine's own CPU per task and the ratio where the engine alone is the limit", () => {
    const withPostgres = (r: CapacityRun, temporal: number, postgres: number): CapacityRun => ({
      ...r,
      cpuMsPerTask: { ...r.cpuMsPerTask, temporal, postgres },
    });
    const report = summarize(
      [
        withPostgres(run(1, 'baseline', 24), 35, 25),
        withPostgres(run(1, 'asyncqueue', 22), 38, 26),
        withPostgres(run(2, 'asyncqueue', 22), 37, 25),
        withPostgres(run(2, 'baseline', 25), 34, 24),
        withPostgres(run(3, 'baseline', 25), 36, 25),
        withPostgres(run(3, 'asyncqueue', 21), 39, 27),
      ],
      { ...meta, engine: 'cluster', cpuSplit: { engine: '0', clients: '1' } },
    );
    assert.deepEqual(report.engineCpuMsPerTask, { baseline: 60, asyncqueue: 64 });
    assert.equal(report.engineRatio, 0.938);
    const markdown = renderCapacity(report);
    assert.match(markdown, /the engine pinned to CPU 0, the bench, API and workers to CPU 1/);
    assert.match(markdown, /temporal \+ postgres, medians\): baseline 60 ms, AsyncQueue 64 ms → .* \*\*0\.938×\*\*/);
    // The dev server's engine is its one process.
    assert.deepEqual(summarize([run(1, 'baseline', 40), run(1, 'asyncqueue', 38)], { ...meta, rounds: 1 }).engineCpuMsPerTask, {
      baseline: 25,
      asyncqueue: 26,
    });
  });

  it('splits the CPUs between the engine and the rest, refusing a split that leaves either side none', () => {
    assert.deepEqual(parseCpuSplit('0', 2), { engine: '0', clients: '1' });
    assert.deepEqual(parseCpuSplit('2-3,0', 6), { engine: '0,2,3', clients: '1,4,5' });
    assert.throws(() => parseCpuSplit('0-1', 2), /leave at least one CPU/);
    assert.throws(() => parseCpuSplit('2', 2), /CPUs 0-1, not 2/);
    assert.throws(() => parseCpuSplit('a', 2), /--engine-cpus: "a" is not a CPU number/);
    assert.throws(() => parseCpuSplit('1-0', 2), /the range 1-0 is empty/);
  });

  it('takes the same split for the ramps, and refuses it for a server the bench does not start', () => {
    withEnv('TEMPORAL_ADDRESS', undefined, () => {
      assert.equal(parseOptions([]).cpuSplit, null);
      const cpus = parseOptions(['--engine-cpus', '0']).cpuSplit;
      assert.equal(cpus?.engine, '0');
      assert.ok(cpus !== null && cpus.clients !== '' && !cpus.clients.split(',').includes('0'), String(cpus?.clients));
    });
    withEnv('TEMPORAL_ADDRESS', '127.0.0.1:7233', () => {
      assert.throws(
        () => parseOptions(['--engine-cpus', '0']),
        /--engine-cpus pins an engine the bench starts; TEMPORAL_ADDRESS/,
      );
      // The cluster is one the bench starts, whatever TEMPORAL_ADDRESS says.
      assert.equal(parseOptions(['--cluster', '--engine-cpus', '0']).cpuSplit?.engine, '0');
    });
  });

  it('alternates which target goes first, each round starting with the one the last ended with', () => {
    const rounds = [1, 2, 3, 4, 5, 6, 7, 8].map(roundOrder);
    assert.deepEqual(rounds.slice(0, 3), [
      ['baseline', 'asyncqueue'],
      ['asyncqueue', 'baseline'],
      ['baseline', 'asyncqueue'],
    ]);
    // Over an even number of rounds each goes first, and so second, equally often.
    assert.equal(rounds.filter(([first]) => first === 'baseline').length, 4);
    // On a shared engine a round meets the engine as the previous round's second run left it.
    for (let i = 1; i < rounds.length; i++) assert.equal(rounds[i]![0], rounds[i - 1]![1]);
  });

  it('runs AsyncQueue in one process on request, without the held-call runs, and refuses process counts with it', () => {
    withEnv('TEMPORAL_ADDRESS', undefined, () => {
      const defaults = parseOptions([]);
      assert.equal(defaults.oneProcess, false);
      assert.ok(!defaults.skip.has('concurrency'));
      const one = parseOptions(['--one-process']);
      assert.equal(one.oneProcess, true);
      assert.ok(one.skip.has('concurrency'), 'the held-call runs measure a worker process of its own');
      assert.throws(() => parseOptions(['--one-process', '--workers', '2']), /--one-process runs one process/);
      assert.throws(() => parseOptions(['--one-process', '--apis', '1']), /not with --apis or --workers/);
    });
  });

  it("keeps the dev server's data in a file as `npm start` does, in memory on request, and refuses the option for another engine", () => {
    withEnv('TEMPORAL_ADDRESS', undefined, () => {
      assert.equal(parseOptions([]).devServerStore, 'file');
      assert.equal(parseOptions(['--dev-server-store', 'memory']).devServerStore, 'memory');
      assert.throws(() => parseOptions(['--dev-server-store', 'disk']), /--dev-server-store must be file or memory/);
      assert.throws(
        () => parseOptions(['--cluster', '--dev-server-store', 'file']),
        /--dev-server-store applies to the dev server/,
      );
    });
    withEnv('TEMPORAL_ADDRESS', '127.0.0.1:7233', () => {
      assert.throws(() => parseOptions(['--dev-server-store', 'memory']), /not to --cluster or TEMPORAL_ADDRESS/);
    });
  });

  it('pins every thread of a process to the CPUs given, and skips a process that has exited', async () => {
    // Once it prints, node has started its own threads (V8's, libuv's): all of them must move.
    const child = spawn(process.execPath, ['-e', "console.log('up'); setTimeout(() => {}, 60_000)"], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      await new Promise((resolve) => child.stdout.once('data', resolve));
      pinProcesses([child.pid!], '0');
      const allowed = (tid: string): string | undefined =>
        /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${child.pid}/task/${tid}/status`, 'utf8'))?.[1];
      const threads = readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/Threads:\s*(\d+)/)?.[1];
      assert.ok(Number(threads) > 1, 'node runs several threads');
      for (const tid of readdirSync(`/proc/${child.pid}/task`)) assert.equal(allowed(tid), '0', `thread ${tid}`);
    } finally {
      child.kill();
      await new Promise((resolve) => child.once('exit', resolve));
    }
    assert.doesNotThrow(() => pinProcesses([child.pid!], '0'));
  });

  it('tags each step of a ramp apart, even when a rate comes twice', () => {
    // The baseline's workflow ids carry the tag: a repeated tag would find the earlier step's
    // webhooks and state latencies below zero.
    const tags = new StepTags('b-');
    assert.deepEqual(
      [40, 50, 40, 55, 40, 50].map((rate) => tags.next(rate)),
      ['b-40', 'b-50', 'b-40.2', 'b-55', 'b-40.3', 'b-50.2'],
    );
  });
});
