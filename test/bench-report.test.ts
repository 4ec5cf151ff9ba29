/**
 * The benchmark report's per-task costs (tools/bench/report-costs.ts): both targets side by side,
 * the server's visibility writes summed, long polls and the store's housekeeping left out of the
 * per-task rows, and RPCs said to be unmeasured when the server's metrics were not reachable; and
 * the API's counters as the bench reads them (eager starts in `npm start`'s shape).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sumCounter } from '../tools/bench/api-client.js';
import { costTables, type CostInputs } from '../tools/bench/report-costs.js';
import type { HistoryCosts } from '../tools/bench/task-costs.js';
import type { RpcCosts } from '../tools/bench/server-metrics.js';

const history = (eventsPerTask: number, open = 0): HistoryCosts => ({
  sampled: 20,
  open,
  eventsPerTask,
  eventsByType: { WORKFLOW_EXECUTION_STARTED: 1, ACTIVITY_TASK_SCHEDULED: eventsPerTask === 19 ? 2 : 1 },
  visibilityWritesPerTask: 2,
  historyBytesPerTask: 4000,
  errors: [],
});

const rpc = (starts: number, storeRows: number): RpcCosts => ({
  tasks: 600,
  seconds: 60,
  perTaskByService: { frontend: 6, history: 9 },
  frontendPerTask: { StartWorkflowExecution: starts, PollWorkflowTaskQueue: 40, RespondWorkflowTaskCompleted: 3 },
  pollsPerSec: 12,
  visibilityWritesPerTask: { RecordWorkflowExecutionStarted: 1, RecordWorkflowExecutionClosed: 1, UpsertWorkflowExecution: 0.5 },
  storePerTask: { UpdateWorkflowExecution: storeRows, GetNamespace: 0.01 },
});

const row = (lines: string[], start: string): string | undefined => lines.find((line) => line.startsWith(start));

describe('bench report: per-task costs', () => {
  const report: CostInputs = {
    engine: 'dev-server',
    costs: { asyncqueue: history(19, 1), baseline: history(17) },
    asyncqueue: { rpc: rpc(1, 5) },
    baseline: { rpc: rpc(1, 4) },
  };
  const lines = costTables(report);

  it('puts both targets in one row per cost', () => {
    assert.equal(row(lines, '| **history events**'), '| **history events** | **19** | **17** |');
    assert.equal(
      row(lines, '| histories read'),
      "| histories read (finished tasks, spread over the ramp's steps) | 20 (1 open) | 20 |",
    );
    assert.equal(row(lines, '| · ACTIVITY_TASK_SCHEDULED'), '| · ACTIVITY_TASK_SCHEDULED | 2 | 1 |');
  });

  it("sums the server's visibility writes and lists each operation", () => {
    assert.equal(row(lines, '| **visibility writes**'), "| **visibility writes** (the server's own count) | **2.5** | **2.5** |");
    assert.equal(row(lines, '| · UpsertWorkflowExecution'), '| · UpsertWorkflowExecution | 0.5 | 0.5 |');
  });

  it('keeps long polls and the store housekeeping out of the per-task rows', () => {
    assert.equal(row(lines, '| · frontend PollWorkflowTaskQueue'), undefined);
    assert.equal(row(lines, '| · frontend RespondWorkflowTaskCompleted'), '| · frontend RespondWorkflowTaskCompleted | 3 | 3 |');
    assert.equal(row(lines, '| · history store GetNamespace'), undefined);
    assert.equal(row(lines, '| · history store UpdateWorkflowExecution'), '| · history store UpdateWorkflowExecution | 5 | 4 |');
    assert.equal(
      row(lines, '| frontend long polls per second'),
      '| frontend long polls per second (per worker and time, not per task) | 12 | 12 |',
    );
  });

  it('says which engine served the RPCs', () => {
    assert.ok(lines.some((line) => line.includes('The dev server serves all services from one process')));
    assert.ok(
      costTables({ ...report, engine: 'cluster' }).some((line) =>
        line.includes('Each service of the cluster is its own process'),
      ),
    );
  });

  it("says the RPCs were not measured when the server's metrics were not reachable", () => {
    const unmeasured = costTables({ ...report, asyncqueue: { rpc: null }, baseline: null });
    assert.equal(row(unmeasured, '| **RPCs served by'), undefined);
    assert.ok(unmeasured.includes("RPCs per task: not measured (the server's metrics were not reachable)."));
    assert.deepEqual(
      costTables({ engine: 'dev-server', costs: { asyncqueue: null, baseline: null }, asyncqueue: null, baseline: null }),
      [],
    );
  });
});

describe("bench: the API's counters", () => {
  it('sums a counter over its labels, and no other metric that shares its prefix', () => {
    const text = [
      '# HELP asyncqueue_tasks_created_total Tasks created.',
      '# TYPE asyncqueue_tasks_created_total counter',
      'asyncqueue_tasks_created_total{delay="no"} 1200',
      'asyncqueue_tasks_created_total{delay="yes"} 3',
      'asyncqueue_tasks_created_total_other 99',
      'asyncqueue_tasks_started_eagerly_total 1150',
      '',
    ].join('\n');
    assert.equal(sumCounter(text, 'asyncqueue_tasks_created_total'), 1203);
    assert.equal(sumCounter(text, 'asyncqueue_tasks_started_eagerly_total'), 1150);
    assert.equal(sumCounter(text, 'asyncqueue_absent_total'), 0);
  });
});
