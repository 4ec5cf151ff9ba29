/**
 * AsyncQueue as the ramp's target: the API and worker processes started as the product runs them
 * (`api-main`, `worker-main`), creates sent round-robin over the API processes, and a task's end
 * observed as its webhook reaching the bench's receiver.
 */
import { freePort } from '../../../src/dev/dev-server.js';
import { isRecord } from '../../shared/json-values.js';
import { runEntry, type Started } from '../../../src/dev/entry-points.js';
import { sleep } from '../../shared/timing.js';
import { ApiClient, apiErrorText } from '../api-client.js';
import { waitForApi } from '../children.js';
import { log } from '../clock.js';
import type { BenchOptions } from '../options.js';
import { processName, type Sampler } from '../process-sampler.js';
import type { WebhookArrival } from '../receivers.js';
import { resources } from '../run-resources.js';
import type { CreateResult, Target } from './target.js';

export class AsyncQueueTarget implements Target {
  readonly name = 'AsyncQueue';
  private next = 0;

  constructor(
    /** One client per API process; creates go to them in turn. */
    private readonly apis: ApiClient[],
    private readonly callbackUrl: string,
    private readonly webhookUrl: string,
    private readonly webhooks: Map<string, WebhookArrival>,
    private readonly children: () => Started[],
  ) {}

  async create(seq: number, stepTag: string): Promise<CreateResult> {
    const api = this.apis[this.next++ % this.apis.length];
    if (api === undefined) return { ok: false, error: 'no API process' };
    const answer = await api.post('/v1/tasks', {
      callbackUrl: this.callbackUrl,
      payload: { bench: stepTag, seq, note: 'asyncqueue bench task' },
      webhookUrl: this.webhookUrl,
      retries: 3,
      timeout: 30,
    });
    if (answer.status === 0) return { ok: false, error: answer.error ?? 'no answer' };
    const id = isRecord(answer.body) && typeof answer.body.id === 'string' ? answer.body.id : undefined;
    if (answer.status !== 202 || id === undefined) return { ok: false, error: apiErrorText(answer.status, answer.body) };
    return { ok: true, id };
  }

  /**
   * How many of the tasks the API processes created so far started eagerly (`npm start`'s shape:
   * `asyncqueue_tasks_started_eagerly_total`); undefined when an API's /metrics did not answer.
   */
  async startsAnsweredEagerly(): Promise<{ eager: number; created: number } | undefined> {
    let eager = 0;
    let created = 0;
    for (const api of this.apis) {
      const [apiEager, apiCreated] = await Promise.all([
        api.counter('asyncqueue_tasks_started_eagerly_total'),
        api.counter('asyncqueue_tasks_created_total'),
      ]);
      if (apiEager === undefined || apiCreated === undefined) return undefined;
      eager += apiEager;
      created += apiCreated;
    }
    return { eager, created };
  }

  completedAt(id: string): number | undefined {
    return this.webhooks.get(id)?.at;
  }

  /** The API's view of tasks that never finished, for the report (the first API process answers). */
  describeTasks(ids: string[]): Promise<unknown[]> {
    const api = this.apis[0];
    return Promise.all(
      ids.map(async (id) => {
        const answer = api !== undefined ? await api.get(`/v1/tasks/${id}`) : { status: 0, body: undefined };
        const view = isRecord(answer.body)
          ? {
              id,
              http: answer.status,
              status: answer.body.status,
              attempts: answer.body.attempts,
              webhook: answer.body.webhook,
              error: answer.body.error,
              updatedAt: answer.body.updatedAt,
            }
          : { id, http: answer.status, body: answer.body };
        return view;
      }),
    );
  }

  assertAlive(): void {
    for (const child of this.children()) {
      if (child.child.exitCode !== null || child.child.signalCode !== null) {
        throw new Error(
          `a child process died (pid ${child.child.pid}, exit ${child.child.exitCode ?? child.child.signalCode}):\n${child.output().slice(-2000)}`,
        );
      }
    }
  }
}

export interface AsyncQueueUnderTest {
  target: AsyncQueueTarget;
  /** The first API process's client: the held-call runs go through it. */
  api: ApiClient;
}

/**
 * Starts `--apis` API and `--workers` worker processes with `env` (each tracked by the sampler),
 * waits until every API is ready, and runs tasks end to end until the system is warm.
 */
export async function startAsyncQueue(
  options: BenchOptions,
  env: Record<string, string>,
  sampler: Sampler,
  receivers: { callbackOrigin: string; webhookUrl: string; webhooks: Map<string, WebhookArrival> },
): Promise<AsyncQueueUnderTest> {
  const nodeArgs = options.cpuProfileDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [];
  const baseUrls: string[] = [];
  for (let i = 0; i < options.apis; i++) {
    const port = await freePort();
    baseUrls.push(`http://127.0.0.1:${port}`);
    // `npm start`'s entry point: with TEMPORAL_ADDRESS set it starts no server of its own.
    const api = runEntry(options.oneProcess ? 'main' : 'api-main', { ...env, PORT: String(port) }, nodeArgs);
    resources.apis.push(api);
    sampler.track(processName('api', i), api.child.pid);
  }
  for (let i = 0; i < (options.oneProcess ? 0 : options.workers); i++) {
    const worker = runEntry('worker-main', env, nodeArgs);
    resources.workers.push(worker);
    sampler.track(processName('worker', i), worker.child.pid);
  }
  log(
    options.oneProcess
      ? `started the API and the worker in one process (${baseUrls.join(', ')}) on task queue ${env.ASYNCQUEUE_TASK_QUEUE}`
      : `started ${options.apis} API process(es) (${baseUrls.join(', ')}) and ${options.workers} worker(s) on task queue ${env.ASYNCQUEUE_TASK_QUEUE}`,
  );
  const children = (): Started[] => [...resources.apis, ...resources.workers];
  for (const baseUrl of baseUrls) await waitForApi(baseUrl, children());
  resources.apiClients.push(...baseUrls.map((baseUrl) => new ApiClient(baseUrl)));
  const api = resources.apiClients[0]!;
  const callbackPath = options.callbackMs > 0 ? `/cb/slow/${options.callbackMs}` : '/cb/fast';
  const target = new AsyncQueueTarget(
    resources.apiClients,
    `${receivers.callbackOrigin}${callbackPath}`,
    receivers.webhookUrl,
    receivers.webhooks,
    children,
  );

  // One task end to end before measuring: worker polling, bundle loaded, sockets warm.
  log('warm-up: one task end to end');
  const warm = await target.create(0, 'warmup');
  if (!warm.ok || warm.id === undefined) throw new Error(`warm-up create failed: ${warm.error}`);
  for (let i = 0; i < 600 && target.completedAt(warm.id) === undefined; i++) {
    target.assertAlive();
    await sleep(100);
  }
  if (target.completedAt(warm.id) === undefined)
    throw new Error('warm-up task did not finish within 60 s: is the worker running?');
  // A few more to warm the JIT and connection pools, then settle.
  await Promise.all(Array.from({ length: 20 }, (_, i) => target.create(i + 1, 'warmup')));
  await sleep(2_000);
  return { target, api };
}
