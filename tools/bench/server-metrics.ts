/**
 * RPCs the Temporal server served, from its Prometheus metrics: the `service_requests` counter by
 * service (frontend, history, matching, worker) and operation, read before and after a ramp and
 * divided by the tasks the ramp created. Frontend requests are what clients (API, workers) sent;
 * history and matching requests are the server's own calls between its services. Long polls are
 * per worker and second, not per task, so they are counted apart. Writes to the visibility store
 * come from its `visibility_persistence_requests` counter: what the server really wrote, which is
 * fewer than the events that ask for it (an upsert the history service processes after the
 * workflow closed is skipped; the close writes the record). Requests to the history store come from
 * `persistence_requests`: the database's share of a task (reads and writes by operation).
 */
import { log } from './clock.js';
import { round } from './distribution.js';

/**
 * `service|operation` → count, summed over namespaces and endpoints (`visibility-store|operation`
 * for writes there, `history-store|operation` for the history store's requests).
 */
export type RequestCounts = Map<string, number>;

export async function scrapeRequests(urls: string[]): Promise<RequestCounts | undefined> {
  if (urls.length === 0) return undefined;
  const counts: RequestCounts = new Map();
  for (const url of urls) {
    let text: string;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      text = await response.text();
      if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    } catch (err) {
      log(`metrics: ${url} did not answer (${String(err)}): no RPC counts for this ramp`);
      return undefined;
    }
    for (const line of text.split('\n')) {
      // service_requests{namespace="default",operation="StartWorkflowExecution",service_name="frontend"} 12
      const match =
        /^(service_requests|visibility_persistence_requests|persistence_requests)(?:_total)?\{([^}]*)\}\s+([0-9.eE+-]+)/.exec(
          line,
        );
      if (match === null) continue;
      const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      const operation = labels.operation ?? '?';
      if (match[1] === 'visibility_persistence_requests' && !VISIBILITY_WRITES.has(operation)) continue;
      const service =
        match[1] === 'visibility_persistence_requests'
          ? VISIBILITY_STORE
          : match[1] === 'persistence_requests'
            ? HISTORY_STORE
            : (labels.service_name ?? '?');
      const key = `${service}|${operation}`;
      counts.set(key, (counts.get(key) ?? 0) + Number(match[3]));
    }
  }
  return counts;
}

const VISIBILITY_STORE = 'visibility-store';
const HISTORY_STORE = 'history-store';
/**
 * History-store requests below this many per task are the store's housekeeping (shard and queue
 * bookkeeping, namespace refreshes), which the reports leave out: they come with time, not tasks.
 */
export const STORE_HOUSEKEEPING_PER_TASK = 0.05;
/** The visibility store's write operations (its reads are the lists' and counts'). */
const VISIBILITY_WRITES = new Set([
  'RecordWorkflowExecutionStarted',
  'RecordWorkflowExecutionClosed',
  'UpsertWorkflowExecution',
  'DeleteWorkflowExecution',
]);

export interface RpcCosts {
  tasks: number;
  seconds: number;
  /** Per task, by service: all requests except long polls. */
  perTaskByService: Record<string, number>;
  /** Frontend requests per task by operation (long polls included, marked as such in the report). */
  frontendPerTask: Record<string, number>;
  /** Long polls (Poll*Queue) the frontend served per second, whatever the load. */
  pollsPerSec: number;
  /** Writes to the visibility store per task, by operation (absent from older results). */
  visibilityWritesPerTask?: Record<string, number>;
  /** Requests to the history store (executions, tasks, histories, namespaces) per task, by operation (absent from older results). */
  storePerTask?: Record<string, number>;
}

const isPoll = (operation: string): boolean => /^Poll\w*TaskQueue$/.test(operation);

export function rpcCosts(before: RequestCounts, after: RequestCounts, tasks: number, seconds: number): RpcCosts {
  const perTaskByService: Record<string, number> = {};
  const frontendPerTask: Record<string, number> = {};
  const visibilityWrites: Record<string, number> = {};
  const store: Record<string, number> = {};
  let polls = 0;
  const per = (n: number): number => (tasks > 0 ? n / tasks : 0);
  for (const [key, value] of after) {
    const delta = value - (before.get(key) ?? 0);
    if (delta <= 0) continue;
    const [service = '?', operation = '?'] = key.split('|');
    if (service === VISIBILITY_STORE) {
      visibilityWrites[operation] = delta;
      continue;
    }
    if (service === HISTORY_STORE) {
      store[operation] = delta;
      continue;
    }
    if (service === 'frontend') frontendPerTask[operation] = (frontendPerTask[operation] ?? 0) + delta;
    if (service === 'frontend' && isPoll(operation)) polls += delta;
    else perTaskByService[service] = (perTaskByService[service] ?? 0) + delta;
  }
  const rounded = (record: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.entries(record).map(([k, v]) => [k, round(per(v), 2) ?? 0]));
  return {
    tasks,
    seconds: round(seconds, 0) ?? 0,
    perTaskByService: rounded(perTaskByService),
    frontendPerTask: rounded(frontendPerTask),
    pollsPerSec: round(polls / Math.max(1, seconds), 1) ?? 0,
    visibilityWritesPerTask: rounded(visibilityWrites),
    storePerTask: rounded(store),
  };
}

export { isPoll };
