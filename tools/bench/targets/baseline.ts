/**
 * The engine's own limit, measured the same way: a raw @temporalio/client in the bench process
 * starts baselineWorkflow (baseline-workflow.ts: taskWorkflow's shape with no-op activities) on a
 * task queue of its own, run by an in-process worker, through the same ramp. AsyncQueue's limit is
 * then reported as a share of it. It runs after AsyncQueue's phases, with the API and workers
 * stopped, so the two never compete for the same cores.
 */
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { TASK_MEMO_KEY, TASK_STATUS_SEARCH_ATTRIBUTE } from '../../../workflows/task-contract.js';
import { sleep, within } from '../../shared/timing.js';
import { log, now } from '../clock.js';
import { DEFAULT_POLICY, type BenchOptions } from '../options.js';
import type { Sampler } from '../process-sampler.js';
import { ramp, type RampResult } from '../ramp.js';
import { resources } from '../run-resources.js';
import type { BaselineActivities, BaselineInput, baselineWorkflow } from './baseline-workflow.js';
import { errorKey, type CreateResult, type Target } from './target.js';

/** Bundled by path (workflowsPath), never imported: workflow code runs in Temporal's sandbox. */
const BASELINE_WORKFLOWS = fileURLToPath(new URL('./baseline-workflow.js', import.meta.url));

export class BaselineTarget implements Target {
  readonly name = 'Temporal baseline';
  readonly completions = new Map<string, number>();

  constructor(
    private readonly connection: Connection,
    private readonly client: Client,
    private readonly taskQueue: string,
    private readonly runId: string,
    /** AsyncQueue's policy, so the workflows match in shape. */
    private readonly policy: typeof DEFAULT_POLICY,
  ) {}

  /** The no-op activities, run by the in-process worker; the second one marks the task's end. */
  activities(): BaselineActivities {
    return {
      // Like callCallback and deliverWebhook, no heartbeat: theirs start after 1 s, and a no-op is done before.
      noopCallback: async ({ payload }) => {
        const context = Context.current();
        return { attempt: context.info.attempt, result: { ok: true, echo: payload } };
      },
      noopWebhook: async ({ id }) => {
        const context = Context.current();
        if (!this.completions.has(id)) this.completions.set(id, now());
        return { attempt: context.info.attempt, statusCode: 200 };
      },
    };
  }

  async create(seq: number, stepTag: string): Promise<CreateResult> {
    const id = `bench-${this.runId}-${stepTag}-${seq}`;
    const createdAt = new Date().toISOString();
    const input: BaselineInput = {
      id,
      payload: { bench: stepTag, seq, note: 'asyncqueue bench task' },
      timeoutSeconds: 30,
      retries: 3,
      ...this.policy,
    };
    try {
      await this.connection.withDeadline(Date.now() + 30_000, () =>
        this.client.workflow.start<typeof baselineWorkflow>('baselineWorkflow', {
          taskQueue: this.taskQueue,
          workflowId: id,
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          args: [input],
          memo: { [TASK_MEMO_KEY]: { id, status: 'pending', createdAt, updatedAt: createdAt, attempts: 0 } },
          typedSearchAttributes: [{ key: TASK_STATUS_SEARCH_ATTRIBUTE, value: 'running' }],
          staticSummary: 'POST 127.0.0.1',
        }),
      );
      return { ok: true, id };
    } catch (err) {
      return { ok: false, error: errorKey(err) };
    }
  }

  completedAt(id: string): number | undefined {
    return this.completions.get(id);
  }

  assertAlive(): void {}
}

/**
 * Installs the SDK runtime (before any native connection) and starts bundling the baseline
 * workflow; undefined when the baseline is skipped. Bundling takes CPU once, so it runs while the
 * AsyncQueue children start, not during a measurement.
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

/** The baseline ramp against the server at `address`; its worker is shut down afterwards. */
export async function runBaseline(
  bundlePromise: Promise<WorkflowBundleWithSourceMap>,
  address: string,
  runId: string,
  options: BenchOptions,
  sampler: Sampler,
  findings: string[],
): Promise<RampResult> {
  await sleep(2_000);
  const bundle = await bundlePromise;
  resources.nativeConnection = await NativeConnection.connect({ address });
  resources.clientConnection = await Connection.connect({ address });
  const client = new Client({ connection: resources.clientConnection, namespace: 'default' });
  const taskQueue = `bench-baseline-${runId}`;
  const target = new BaselineTarget(resources.clientConnection, client, taskQueue, runId, {
    ...DEFAULT_POLICY,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs,
  });
  const worker = await Worker.create({
    connection: resources.nativeConnection,
    namespace: 'default',
    taskQueue,
    workflowBundle: bundle,
    activities: target.activities(),
    // The AsyncQueue worker's settings (src/worker.ts, defaults).
    maxConcurrentActivityTaskExecutions: 2000,
    maxCachedWorkflows: 5000,
  });
  const running = worker.run();
  resources.baselineWorker = { worker, running };
  log('baseline warm-up');
  await Promise.all(Array.from({ length: 20 }, (_, i) => target.create(i, 'warmup')));
  for (let i = 0; i < 600 && target.completions.size < 20; i++) await sleep(100);
  await sleep(2_000);
  const result = await ramp(target, options, sampler, 'b-', 2_000);
  if (result.leftover.notCompleted > 0) {
    findings.push(`Baseline: ${result.leftover.notCompleted} workflow(s) had not run their second activity after the final drain`);
  }
  worker.shutdown();
  await within(running, 20_000);
  resources.baselineWorker = undefined;
  return result;
}
