/**
 * The Temporal worker: runs task workflows and their callback/webhook activities. Stateless, so
 * any number of worker processes can poll the same task queue.
 */
import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { CancelWatch } from '../activities/cancel-watch.js';
import { createActivities } from '../activities/index.js';
import type { SigningKey } from '../activities/webhook-signature.js';
import type { TaskTokenKeys } from '../activities/task-token.js';
import type { Config } from './config.js';
import { DestinationGuard } from './destination-guard.js';
import { USER_AGENT } from './version.js';
import { CANCELLING_INDEXED_STATUS, TASK_STATUS_SEARCH_ATTRIBUTE, WORKFLOW_ID_PREFIX } from '../workflows/task-contract.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.js', import.meta.url));

/** How often a worker holding calls asks which tasks are being cancelled (one query per worker). */
const CANCEL_WATCH_INTERVAL_MS = 1_000;

/** Stops polling and lets in-flight calls finish within the grace time; safe to call twice. */
export async function stopWorker(worker: Worker, running: Promise<void>): Promise<void> {
  if (worker.getState() === 'RUNNING') worker.shutdown();
  await running;
}

export interface TaskWorkerOptions {
  config: Config;
  connection: NativeConnection;
  signingKeys: readonly SigningKey[];
  taskTokens: TaskTokenKeys;
  /** Tests replace DNS so that names resolve to loopback addresses. */
  guard?: DestinationGuard;
  /** A prebuilt bundle (tests share one); default: bundle `WORKFLOWS_PATH` at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

export async function createTaskWorker(options: TaskWorkerOptions): Promise<Worker> {
  const { config } = options;
  const guard =
    options.guard ??
    new DestinationGuard({
      allowPrivateNetworks: config.allowPrivateNetworks,
      allowedDestinations: config.allowedDestinations,
    });
  // One keep-alive pool per origin for the life of the worker: callbacks to the same app reuse
  // sockets. As many connections per origin as the worker holds calls: most apps have one callback
  // origin, and a smaller pool would queue calls inside the HTTP client with their timeout running
  // (the benchmark saw 1000 held calls to one origin capped at 256).
  const dispatcher = guard.createDispatcher({
    keepAliveTimeout: 30_000,
    connections: config.worker.maxConcurrentActivities,
  });
  const client = new Client({ connection: options.connection, namespace: config.temporalNamespace });
  const query = `${TASK_STATUS_SEARCH_ATTRIBUTE.name} = '${CANCELLING_INDEXED_STATUS}' AND ExecutionStatus = 'Running'`;
  const cancelWatch = new CancelWatch({
    intervalMs: CANCEL_WATCH_INTERVAL_MS,
    cancelling: () =>
      options.connection.withDeadline(Date.now() + CANCEL_WATCH_INTERVAL_MS * 5, async () => {
        const ids = new Set<string>();
        for await (const execution of client.workflow.list({ query })) {
          if (execution.workflowId.startsWith(WORKFLOW_ID_PREFIX)) ids.add(execution.workflowId.slice(WORKFLOW_ID_PREFIX.length));
        }
        return ids;
      }),
    onError: (err) => Runtime.instance().logger.warn('cancel watch: could not list cancelling tasks', { error: String(err) }),
  });
  const worker = await Worker.create({
    connection: options.connection,
    namespace: config.temporalNamespace,
    taskQueue: config.taskQueue,
    ...(options.workflowBundle !== undefined
      ? { workflowBundle: options.workflowBundle }
      : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities({
      signingKeys: options.signingKeys,
      taskTokens: options.taskTokens,
      dispatcher,
      maxResponseBytes: config.maxResponseBytes,
      userAgent: USER_AGENT,
      cancelWatch,
    }),
    maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentActivities,
    maxCachedWorkflows: config.worker.maxCachedWorkflows,
    shutdownGraceTime: config.worker.shutdownGraceMs,
  });
  return worker;
}
