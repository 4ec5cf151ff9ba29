/**
 * What one task costs the engine, read off finished tasks after the ramps: the history of a
 * sample of each target's tasks (events by type), and the visibility writes they imply (the start,
 * each UpsertWorkflowSearchAttributes and WorkflowPropertiesModified, the close: each one is a
 * visibility task the history service runs against the visibility store).
 */
import { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { log } from './clock.js';
import { round } from './distribution.js';

export interface HistoryCosts {
  sampled: number;
  /** Tasks of the sample whose workflow had not closed when read. */
  open: number;
  eventsPerTask: number;
  /** Event type (without the EVENT_TYPE_ prefix) → events per task. */
  eventsByType: Record<string, number>;
  visibilityWritesPerTask: number;
  /** Sum of the serialized history sizes / sampled, bytes. */
  historyBytesPerTask: number;
  errors: string[];
}

const CLOSE_EVENTS = new Set([
  'WORKFLOW_EXECUTION_COMPLETED',
  'WORKFLOW_EXECUTION_FAILED',
  'WORKFLOW_EXECUTION_CANCELED',
  'WORKFLOW_EXECUTION_TERMINATED',
  'WORKFLOW_EXECUTION_TIMED_OUT',
  'WORKFLOW_EXECUTION_CONTINUED_AS_NEW',
]);
const VISIBILITY_EVENTS = new Set([
  'WORKFLOW_EXECUTION_STARTED',
  'UPSERT_WORKFLOW_SEARCH_ATTRIBUTES',
  'WORKFLOW_PROPERTIES_MODIFIED',
  ...CLOSE_EVENTS,
]);

/**
 * Reads the histories of `workflowIds` (a few at a time) and averages them per task; the closed
 * ones are also added to `keep` when given (the capacity run replays them: replay-cost.ts).
 */
export async function historyCosts(
  address: string,
  namespace: string,
  workflowIds: string[],
  keep?: proto.temporal.api.history.v1.IHistory[],
): Promise<HistoryCosts> {
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  const totals = new Map<string, number>();
  const errors: string[] = [];
  let sampled = 0;
  let open = 0;
  let bytes = 0;
  try {
    const queue = [...workflowIds];
    const lane = async (): Promise<void> => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        try {
          const history = await client.workflow.getHandle(id).fetchHistory();
          const events = history.events ?? [];
          bytes += proto.temporal.api.history.v1.History.encode(history).finish().length;
          sampled++;
          let closed = false;
          for (const event of events) {
            const name = (proto.temporal.api.enums.v1.EventType[event.eventType ?? 0] ?? String(event.eventType)).replace(
              /^EVENT_TYPE_/,
              '',
            );
            totals.set(name, (totals.get(name) ?? 0) + 1);
            if (CLOSE_EVENTS.has(name)) closed = true;
          }
          if (!closed) open++;
          else keep?.push(history);
        } catch (err) {
          if (errors.length < 5) errors.push(`${id}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 4 }, lane));
  } finally {
    await connection.close();
  }
  const per = (n: number): number => round(n / Math.max(1, sampled), 2) ?? 0;
  let events = 0;
  let visibility = 0;
  for (const [name, count] of totals) {
    events += count;
    if (VISIBILITY_EVENTS.has(name)) visibility += count;
  }
  if (errors.length > 0) log(`histories: ${errors.length} could not be read, e.g. ${errors[0]}`);
  return {
    sampled,
    open,
    eventsPerTask: per(events),
    eventsByType: Object.fromEntries([...totals].sort((a, b) => b[1] - a[1]).map(([name, count]) => [name, per(count)])),
    visibilityWritesPerTask: per(visibility),
    historyBytesPerTask: Math.round(bytes / Math.max(1, sampled)),
    errors,
  };
}

/** Up to `n` items spread evenly over `items` (the first, the last, and between). */
export function spread<T>(items: readonly T[], n: number): T[] {
  if (items.length <= n) return [...items];
  return Array.from({ length: n }, (_, i) => items[Math.round((i * (items.length - 1)) / Math.max(1, n - 1))]!);
}
