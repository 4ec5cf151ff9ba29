/**
 * The baseline: the minimal raw-Temporal job (baseline-workflow.ts: one activity POSTs the
 * callback, one POSTs the webhook, nothing else), started by a plain @temporalio/client in the
 * bench process (with `--eager-baseline` on the worker's connection, asking for eager starts) on a
 * task queue of its own and run by an in-process worker, through the same ramp
 * and the same receivers as AsyncQueue. A task ends, for both, when its webhook reaches the bench's
 * webhook receiver. It runs before AsyncQueue's phases, with no API or AsyncQueue worker running,
 * so the two never compete for the same cores; AsyncQueue's throughput and latency are then stated
 * against it.
 */
import { fileURLToPath } from 'node:url';
import { Client, Connection, type ConnectionLike } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { Agent, request } from 'undici';
import { sleep, within } from '../../shared/timing.js';
import { log, now } from '../clock.js';
import { DEFAULT_POLICY, type BenchOptions } from '../options.js';
import type { Sampler } from '../process-sampler.js';
import { ramp, type RampResult } from '../ramp.js';
import type { WebhookArrival } from '../receivers.js';
import { resources } from '../run-resources.js';
import { scrapeRequests, rpcCosts } from '../server-metrics.js';
import type { BaselineActivities, BaselineInput, baselineWorkflow } from './baseline-workflow.js';
import { errorKey, type CreateResult, type Target } from './target.js';
import { WORKFLOW_TASK_POLLS, WORKFLOW_TASK_SLOTS } from '../../../src/worker/task-worker.js';
import { connectWorkerConnection } from '../../../src/worker/connection.js';

/** Bundled by path (workflowsPath), never imported: workflow code runs in Temporal's sandbox. */
const BASELINE_WORKFLOWS = fileURLToPath(new URL('./baseline-workflow.js', import.meta.url));

export class BaselineTarget implements Target {
  readonly name = 'Temporal baseline';
  /** Keep-alive connections per origin, as AsyncQueue's worker keeps them. */
  private readonly agent = new Agent({ keepAliveTimeout: 30_000, connections: 256 });
  /** Workflows started, and how many of them the server answered with their first workflow task (--eager-baseline). */
  starts = 0;
  eagerStarts = 0;

  constructor(
    private readonly connection: ConnectionLike,
    private readonly client: Client,
    private readonly taskQueue: string,
    private readonly runId: string,
    private readonly callbackUrl: string,
    private readonly webhookUrl: string,
    private readonly webhooks: Map<string, WebhookArrival>,
    /** Ask for eager starts (--eager-baseline): the client is then on the worker's connection. */
    private readonly eager = false,
  ) {}

  /** The two activities, run by the in-process worker: plain POSTs with a timeout, nothing else. */
  activities(): BaselineActivities {
    const post = async (url: string, body: unknown, timeoutMs: number): Promise<string> => {
      const response = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
        dispatcher: this.agent,
      });
      const text = await response.body.text();
      if (response.statusCode < 200 || response.statusCode > 299) throw new Error(`HTTP ${response.statusCode} from ${url}`);
      return text;
    };
    return {
      postCallback: async ({ url, payload, timeoutMs }) => {
        const text = await post(url, payload, timeoutMs);
        try {
          return JSON.parse(text) as unknown;
        } catch {
          return text;
        }
      },
      postWebhook: async ({ url, timeoutMs, event }) => {
        await post(url, event, timeoutMs);
      },
    };
  }

  async create(seq: number, stepTag: string): Promise<CreateResult> {
    const id = `bench-${this.runId}-${stepTag}-${seq}`;
    const input: BaselineInput = {
      id,
      callbackUrl: this.callbackUrl,
      webhookUrl: this.webhookUrl,
      payload: { bench: stepTag, seq, note: 'asyncqueue bench task' },
      // What AsyncQueueTarget asks for (timeout: 30, retries: 3), with the API's default policy.
      timeoutSeconds: 30,
      retries: 3,
      retryInitialIntervalMs: DEFAULT_POLICY.retryInitialIntervalMs,
      retryMaximumIntervalMs: DEFAULT_POLICY.retryMaximumIntervalMs,
      webhookTimeoutMs: DEFAULT_POLICY.webhookTimeoutMs,
      webhookRetryInitialIntervalMs: DEFAULT_POLICY.webhookRetryInitialIntervalMs,
      webhookRetryMaximumIntervalMs: DEFAULT_POLICY.webhookRetryMaximumIntervalMs,
      webhookRetryDurationMs: DEFAULT_POLICY.webhookRetryDurationMs,
    };
    try {
      const handle = await this.connection.withDeadline(Date.now() + 30_000, () =>
        this.client.workflow.start<typeof baselineWorkflow>('baselineWorkflow', {
          taskQueue: this.taskQueue,
          workflowId: id,
          args: [input],
          ...(this.eager ? { requestEagerStart: true } : {}),
        }),
      );
      this.starts++;
      if (handle.eagerlyStarted) this.eagerStarts++;
      return { ok: true, id };
    } catch (err) {
      return { ok: false, error: errorKey(err) };
    }
  }

  completedAt(id: string): number | undefined {
    return this.webhooks.get(id)?.at;
  }

  assertAlive(): void {}

  close(): Promise<void> {
    return this.agent.close();
  }
}

/**
 * Installs the SDK runtime (before any native connection) and starts bundling the baseline
 * workflow; undefined when the baseline is skipped. Bundling takes CPU once, before any measurement.
 */
export function prepareBaseline(options: BenchOptions): Promise<WorkflowBundleWithSourceMap> | undefined {
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const bundlePromise: Promise<WorkflowBundleWithSourceMap> | undefined = options.skip.has('baseline')
    ? undefined
    : bundleWorkflowCode({ workflowsPath: BASELINE_WORKFLOWS, logger: new DefaultLogger('WARN') });
  // A rejected bundle is reported when awaited; do not let it crash the process before that.
  bundlePromise?.catch(() => undefined);
  return bundlePromise;
}

/** The baseline's client, in-process worker and target, started and warmed on the engine at `address`. */
export interface StartedBaseline {
  target: BaselineTarget;
  /** Shuts the worker down (its connections stay open until closeBaselineConnections). */
  stop(): Promise<void>;
}

/**
 * Connects to the engine, runs the baseline's worker in this process with the AsyncQueue worker's
 * settings, and runs 20 workflows end to end so that the first measured one meets a warm system.
 */
export async function startBaseline(
  bundlePromise: Promise<WorkflowBundleWithSourceMap>,
  engine: { address: string; namespace: string },
  receivers: { callbackOrigin: string; webhookUrl: string; webhooks: Map<string, WebhookArrival> },
  runId: string,
  options: BenchOptions,
): Promise<StartedBaseline> {
  const bundle = await bundlePromise;
  // Made as AsyncQueue's worker makes its own (compressed or not by the engine's address).
  resources.nativeConnection = await connectWorkerConnection({ embeddedAddress: engine.address }, undefined);
  resources.clientConnection = await Connection.connect({ address: engine.address });
  // Eager starts go through the connection of the worker that takes them (as src/dev/main.ts does).
  const connection = options.eagerBaseline ? resources.nativeConnection : resources.clientConnection;
  const client = new Client({ connection, namespace: engine.namespace });
  const taskQueue = `bench-baseline-${runId}`;
  const callbackPath = options.callbackMs > 0 ? `/cb/slow/${options.callbackMs}` : '/cb/fast';
  const target = new BaselineTarget(
    connection,
    client,
    taskQueue,
    runId,
    `${receivers.callbackOrigin}${callbackPath}`,
    receivers.webhookUrl,
    receivers.webhooks,
    options.eagerBaseline,
  );
  const worker = await Worker.create({
    connection: resources.nativeConnection,
    namespace: engine.namespace,
    taskQueue,
    workflowBundle: bundle,
    activities: target.activities(),
    // The AsyncQueue worker's settings (src/worker/task-worker.ts, defaults).
    maxConcurrentActivityTaskExecutions: 2000,
    maxCachedWorkflows: 5000,
    workflowThreadPoolSize: options.workflowThreads,
    workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: WORKFLOW_TASK_POLLS },
    maxConcurrentWorkflowTaskExecutions: WORKFLOW_TASK_SLOTS,
  });
  const running = worker.run();
  resources.baselineWorker = { worker, running };
  const stop = async (): Promise<void> => {
    if (options.eagerBaseline) log(`  baseline: ${target.eagerStarts} of ${target.starts} start(s) answered eagerly`);
    worker.shutdown();
    await within(running, 20_000);
    resources.baselineWorker = undefined;
    await target.close();
  };
  try {
    log('baseline warm-up');
    const warm = await Promise.all(Array.from({ length: 20 }, (_, i) => target.create(i, 'warmup')));
    const warmIds = warm.flatMap((r) => (r.ok && r.id !== undefined ? [r.id] : []));
    for (let i = 0; i < 600 && warmIds.some((id) => target.completedAt(id) === undefined); i++) await sleep(100);
    await sleep(2_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { target, stop };
}

/** The baseline ramp against the server at `address`; its worker is shut down afterwards. */
export async function runBaseline(
  bundlePromise: Promise<WorkflowBundleWithSourceMap>,
  engine: { address: string; namespace: string; metricsUrls: string[] },
  receivers: { callbackOrigin: string; webhookUrl: string; webhooks: Map<string, WebhookArrival> },
  runId: string,
  options: BenchOptions,
  sampler: Sampler,
  reserveMs: number,
  findings: string[],
): Promise<RampResult> {
  const { target, stop } = await startBaseline(bundlePromise, engine, receivers, runId, options);
  try {
    const before = await scrapeRequests(engine.metricsUrls);
    const startedAt = now();
    const result = await ramp(target, options, sampler, 'b-', { reserveMs });
    const after = before !== undefined ? await scrapeRequests(engine.metricsUrls) : undefined;
    if (before !== undefined && after !== undefined)
      result.rpc = rpcCosts(before, after, result.createdTotal, (now() - startedAt) / 1000);
    if (result.leftover.notCompleted > 0) {
      findings.push(
        `Baseline: ${result.leftover.notCompleted} workflow(s) had not delivered their webhook after the final drain`,
      );
    }
    return result;
  } finally {
    await stop();
  }
}
