/**
 * The report's per-task costs: history events, visibility writes and RPCs per task, AsyncQueue
 * and the baseline side by side (task-costs.ts, server-metrics.ts).
 */
import { round } from './distribution.js';
import type { RampResult } from './ramp.js';
import type { Report } from './report.js';
import { isPoll, STORE_HOUSEKEEPING_PER_TASK, type RpcCosts } from './server-metrics.js';

/** History events, visibility writes and RPCs per task, AsyncQueue and the baseline side by side. */
/** What the cost tables read of a report. */
export interface CostInputs {
  engine: Report['engine'];
  costs: Report['costs'];
  asyncqueue: Pick<RampResult, 'rpc'> | null;
  baseline: Pick<RampResult, 'rpc'> | null;
}

export function costTables(report: CostInputs): string[] {
  const { asyncqueue: aqH, baseline: baseH } = report.costs;
  const aqR = report.asyncqueue?.rpc ?? null;
  const baseR = report.baseline?.rpc ?? null;
  if (aqH === null && baseH === null && aqR === null && baseR === null) return [];
  const lines: string[] = ['## Per-task costs', ''];
  const num = (value: number | undefined | null): string => (value === undefined || value === null ? '—' : String(value));
  lines.push(
    `| per task | AsyncQueue | baseline |`,
    '|---|---:|---:|',
    `| histories read (finished tasks, spread over the ramp's steps) | ${num(aqH?.sampled)}${aqH?.open ? ` (${aqH.open} open)` : ''} | ${num(baseH?.sampled)}${baseH?.open ? ` (${baseH.open} open)` : ''} |`,
    `| **history events** | **${num(aqH?.eventsPerTask)}** | **${num(baseH?.eventsPerTask)}** |`,
  );
  const types = [...new Set([...Object.keys(aqH?.eventsByType ?? {}), ...Object.keys(baseH?.eventsByType ?? {})])];
  for (const type of types)
    lines.push(`| · ${type} | ${num(aqH?.eventsByType[type] ?? 0)} | ${num(baseH?.eventsByType[type] ?? 0)} |`);
  lines.push(
    `| history size, bytes | ${num(aqH?.historyBytesPerTask)} | ${num(baseH?.historyBytesPerTask)} |`,
    `| visibility updates the events ask for (start, UpsertWorkflowSearchAttributes, WorkflowPropertiesModified, close) | ${num(aqH?.visibilityWritesPerTask)} | ${num(baseH?.visibilityWritesPerTask)} |`,
  );
  const writes = (costs: RpcCosts | null): number | null =>
    costs?.visibilityWritesPerTask === undefined
      ? null
      : round(
          Object.values(costs.visibilityWritesPerTask).reduce((sum, n) => sum + n, 0),
          2,
        );
  if (aqR?.visibilityWritesPerTask !== undefined || baseR?.visibilityWritesPerTask !== undefined) {
    lines.push(`| **visibility writes** (the server's own count) | **${num(writes(aqR))}** | **${num(writes(baseR))}** |`);
    const ops = [
      ...new Set([...Object.keys(aqR?.visibilityWritesPerTask ?? {}), ...Object.keys(baseR?.visibilityWritesPerTask ?? {})]),
    ].sort();
    for (const op of ops)
      lines.push(
        `| · ${op} | ${num(aqR?.visibilityWritesPerTask?.[op] ?? 0)} | ${num(baseR?.visibilityWritesPerTask?.[op] ?? 0)} |`,
      );
  }
  if (aqR !== null || baseR !== null) {
    const services = [
      ...new Set([...Object.keys(aqR?.perTaskByService ?? {}), ...Object.keys(baseR?.perTaskByService ?? {})]),
    ].sort();
    for (const service of services) {
      lines.push(
        `| **RPCs served by ${service}** (long polls apart) | **${num(aqR?.perTaskByService[service] ?? 0)}** | **${num(baseR?.perTaskByService[service] ?? 0)}** |`,
      );
    }
    const operations = [...new Set([...Object.keys(aqR?.frontendPerTask ?? {}), ...Object.keys(baseR?.frontendPerTask ?? {})])]
      .filter((op) => !isPoll(op))
      .sort(
        (a, b) =>
          (aqR?.frontendPerTask[b] ?? 0) +
          (baseR?.frontendPerTask[b] ?? 0) -
          (aqR?.frontendPerTask[a] ?? 0) -
          (baseR?.frontendPerTask[a] ?? 0),
      );
    for (const op of operations)
      lines.push(`| · frontend ${op} | ${num(aqR?.frontendPerTask[op] ?? 0)} | ${num(baseR?.frontendPerTask[op] ?? 0)} |`);
    // The history store's requests (the dev server's SQLite, the cluster's PostgreSQL): the ones a
    // task makes, not the store's periodic housekeeping.
    const storeOps = [...new Set([...Object.keys(aqR?.storePerTask ?? {}), ...Object.keys(baseR?.storePerTask ?? {})])]
      .filter(
        (op) =>
          (aqR?.storePerTask?.[op] ?? 0) >= STORE_HOUSEKEEPING_PER_TASK ||
          (baseR?.storePerTask?.[op] ?? 0) >= STORE_HOUSEKEEPING_PER_TASK,
      )
      .sort();
    for (const op of storeOps)
      lines.push(`| · history store ${op} | ${num(aqR?.storePerTask?.[op] ?? 0)} | ${num(baseR?.storePerTask?.[op] ?? 0)} |`);
    lines.push(
      `| frontend long polls per second (per worker and time, not per task) | ${num(aqR?.pollsPerSec)} | ${num(baseR?.pollsPerSec)} |`,
      `| ramp: tasks created / seconds the RPCs were counted over | ${aqR !== null ? `${aqR.tasks} / ${aqR.seconds}` : '—'} | ${baseR !== null ? `${baseR.tasks} / ${baseR.seconds}` : '—'} |`,
    );
  }
  lines.push(
    '',
    'Events by type from the histories of finished tasks. Visibility updates the events ask for: the start, each upsert of search attributes or memo, the close; ' +
      'the writes the server made are fewer (its `visibility_persistence_requests`, counted like the RPCs): an upsert it processes after the workflow closed is skipped. ' +
      "RPCs: the server's `service_requests` (Prometheus) counted over each ramp, steps, pauses and final drain included, divided by the tasks the ramp created; " +
      "frontend requests are what the API and workers sent, history and matching requests are calls between the server's own services. " +
      (report.engine === 'cluster'
        ? 'Each service of the cluster is its own process with its own /metrics.'
        : 'The dev server serves all services from one process and one /metrics.'),
  );
  if (aqR === null && baseR === null) lines.push('', "RPCs per task: not measured (the server's metrics were not reachable).");
  return lines;
}
