/**
 * `GET /metrics` in Prometheus format: request latency per route and status, tasks created, the
 * process's own metrics, and — when API and worker share a process (`npm start`) — the worker's
 * metrics (Temporal SDK metrics, task outcomes, callback and webhook latency), appended as served
 * by the SDK's exporter.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ApiMetrics {
  tasksCreated: Counter<'delay'>;
  tasksStartedEagerly: Counter;
}

export function registerApiMetrics(
  app: FastifyInstance,
  options: { workerMetricsUrl: string | undefined; authorize: (request: FastifyRequest) => void },
): ApiMetrics {
  // A registry per app, not prom-client's global one: tests build several apps in one process.
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'asyncqueue_api_' });
  const requests = new Histogram({
    name: 'asyncqueue_http_request_duration_seconds',
    help: 'API request latency',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const tasksCreated = new Counter({
    name: 'asyncqueue_tasks_created_total',
    help: 'Tasks created (idempotent repeats not counted)',
    labelNames: ['delay'],
    registers: [registry],
  });

  const tasksStartedEagerly = new Counter({
    name: 'asyncqueue_tasks_started_eagerly_total',
    help: "Tasks whose first workflow task Temporal handed to this process's worker in its answer to the start (eager start; npm start)",
    registers: [registry],
  });

  // `?wait` long polls (tasks/task-end-watch.ts), read when scraped.
  const waits = () => (app.hasDecorator('tasks') ? app.tasks.waitStats() : undefined);
  for (const [name, help, read] of [
    ['asyncqueue_wait_clients', 'Requests waiting with ?wait for their task to end', 'waiters'],
    ['asyncqueue_wait_polls', 'Long polls on Temporal for ?wait (one per waited-for task)', 'polling'],
    ['asyncqueue_wait_polls_queued', 'Waited-for tasks queued for a long poll (ASYNCQUEUE_MAX_WAIT_POLLS reached)', 'queued'],
  ] as const) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(waits()?.[read] ?? 0);
      },
    });
  }

  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, not the URL: task ids must not become label values.
    const route = request.routeOptions.url ?? 'unmatched';
    requests.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    options.authorize(request);
    let text = await registry.metrics();
    if (options.workerMetricsUrl !== undefined) {
      text += await fetchWorkerMetrics(options.workerMetricsUrl, request.log);
    }
    return reply.type(registry.contentType).send(text);
  });

  return { tasksCreated, tasksStartedEagerly };
}

async function fetchWorkerMetrics(url: string, log: FastifyInstance['log']): Promise<string> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return `\n${await response.text()}`;
  } catch (err) {
    log.warn({ err }, 'worker metrics unavailable');
    return '';
  }
}
