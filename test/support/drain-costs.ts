/**
 * What a drain cost the server, per attempt, for `flow-control-measure.ts`: its RPCs (from the
 * server's /metrics) and the history events it wrote by type, its tasks' (a sample) and, for a
 * key's drain, its limiter's, counted from the drain's release on (server timestamps). The dev
 * server's cost per attempt follows what it writes, and the difference between a key's drain and
 * the engine's says which writes and calls flow control adds.
 */
import type { Client } from '@temporalio/client';
import proto, { type temporal } from '@temporalio/proto';
import { limiterWorkflowId } from '../../workflows/flow-control-contract.js';
import { workflowIdForTask } from '../../workflows/task-contract.js';
import { isPoll, type RequestCounts } from '../../tools/bench/server-metrics.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Event type name (`WorkflowTaskScheduled`, …) → events per attempt. */
export type EventsPerAttempt = Map<string, number>;

const eventMs = (event: HistoryEvent): number =>
  Number(event.eventTime?.seconds ?? 0) * 1000 + Math.floor((event.eventTime?.nanos ?? 0) / 1e6);

/** `EVENT_TYPE_WORKFLOW_TASK_SCHEDULED` (or its number) → `WorkflowTaskScheduled`. */
function typeName(event: HistoryEvent): string {
  const type = event.eventType ?? 0;
  const raw = (typeof type === 'number' ? (proto.temporal.api.enums.v1.EventType[type] ?? String(type)) : String(type)).replace(
    /^EVENT_TYPE_/,
    '',
  );
  return raw
    .toLowerCase()
    .split('_')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');
}

function countSince(events: readonly HistoryEvent[], since: number, into: Map<string, number>): void {
  for (const event of events) {
    if (eventMs(event) < since) continue;
    const name = typeName(event);
    into.set(name, (into.get(name) ?? 0) + 1);
  }
}

/**
 * Events per attempt written from `since` on by `sample` of the drain's tasks (scaled to per task)
 * and, with `key`, by its limiter (divided by `attempts`).
 */
export async function drainEvents(
  client: Client,
  { taskIds, since, attempts, key }: { taskIds: readonly string[]; since: number; attempts: number; key?: string },
  sample = 40,
): Promise<EventsPerAttempt> {
  const tasks = new Map<string, number>();
  const sampled = taskIds.slice(0, sample);
  let shown = false;
  for (const [i, taskId] of sampled.entries()) {
    const { events } = await client.workflow.getHandle(workflowIdForTask(taskId)).fetchHistory();
    countSince(events ?? [], since, tasks);
    // SHOW_TASK_HISTORY=1: the first task whose workflow task failed, else the last sampled.
    const failed = (events ?? []).some((event) => event.workflowTaskFailedEventAttributes);
    if (process.env.SHOW_TASK_HISTORY === '1' && !shown && (failed || i === sampled.length - 1)) {
      shown = true;
      process.stdout.write(`${taskId}:\n${describeHistory(events ?? [], since)}`);
    }
  }
  const perAttempt: EventsPerAttempt = new Map();
  for (const [name, n] of tasks) perAttempt.set(`task ${name}`, n / sampled.length);
  if (key !== undefined) {
    const limiter = new Map<string, number>();
    const { events } = await client.workflow.getHandle(limiterWorkflowId(key)).fetchHistory();
    countSince(events ?? [], since, limiter);
    for (const [name, n] of limiter) perAttempt.set(`limiter ${name}`, n / attempts);
  }
  return perAttempt;
}

/** One line per event from `since` on: its time from `since`, its type and what it names. */
function describeHistory(events: readonly HistoryEvent[], since: number): string {
  return events
    .filter((event) => eventMs(event) >= since)
    .map((event) => {
      const named =
        event.workflowExecutionSignaledEventAttributes?.signalName ??
        event.markerRecordedEventAttributes?.markerName ??
        event.activityTaskScheduledEventAttributes?.activityType?.name ??
        (event.workflowTaskFailedEventAttributes ? String(event.workflowTaskFailedEventAttributes.cause) : undefined) ??
        '';
      return `  +${eventMs(event) - since} ms ${typeName(event)} ${named}\n`;
    })
    .join('');
}

const total = (events: EventsPerAttempt, prefix: string): number =>
  [...events].filter(([name]) => name.startsWith(prefix)).reduce((sum, [, n]) => sum + n, 0);

/** A line for each drain's totals, and the key's events the engine's drain did not write. */
export function compareEvents(key: EventsPerAttempt, engine: EventsPerAttempt): string {
  const more = differences(key, engine, 0.05).map(([name, d]) => `${name} ${d > 0 ? '+' : ''}${d.toFixed(2)}`);
  return (
    `history events per attempt: key ${(total(key, 'task ') + total(key, 'limiter ')).toFixed(1)} ` +
    `(task ${total(key, 'task ').toFixed(1)}, limiter ${total(key, 'limiter ').toFixed(1)}); engine ${total(engine, 'task ').toFixed(1)}\n` +
    `  the key's difference, per attempt: ${more.join(', ')}\n`
  );
}

/** `a` minus `b` per name, where it differs by `least` or more, the largest first. */
function differences(a: Map<string, number>, b: Map<string, number>, least: number): Array<readonly [string, number]> {
  return [...new Set([...a.keys(), ...b.keys()])]
    .map((name) => [name, (a.get(name) ?? 0) - (b.get(name) ?? 0)] as const)
    .filter(([, d]) => Math.abs(d) >= least)
    .sort((x, y) => y[1] - x[1]);
}

/**
 * The server's requests between two scrapes, per attempt, by `service|operation` (long polls left
 * out): its services' RPCs, and the visibility and history stores' requests.
 */
export function requestsPerAttempt(
  before: RequestCounts | undefined,
  after: RequestCounts | undefined,
  attempts: number,
): Map<string, number> | undefined {
  if (before === undefined || after === undefined) return undefined;
  const per = new Map<string, number>();
  for (const [key, value] of after) {
    const delta = value - (before.get(key) ?? 0);
    if (delta > 0 && !isPoll(key.split('|')[1] ?? '')) per.set(key, delta / attempts);
  }
  return per;
}

/** Requests per attempt by service or store, then the operations where `key` costs more than `engine`, most first. */
export function compareRequests(key: Map<string, number>, engine: Map<string, number>): string {
  const byService = (m: Map<string, number>): string => {
    const out = new Map<string, number>();
    for (const [name, value] of m) out.set(name.split('|')[0]!, (out.get(name.split('|')[0]!) ?? 0) + value);
    return [...out].map(([service, n]) => `${service} ${n.toFixed(1)}`).join(', ');
  };
  const more = differences(key, engine, 0.05)
    .filter(([, d]) => d > 0)
    .slice(0, 12)
    .map(([name, d]) => `${name} +${d.toFixed(2)}`);
  return `server requests per attempt (RPCs by service; the stores'): key ${byService(key)}; engine ${byService(engine)}\n  the key's extra, per attempt: ${more.join(', ')}\n`;
}
