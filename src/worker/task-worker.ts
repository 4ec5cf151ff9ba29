/**
 * The Temporal worker: runs task workflows and their callback/webhook activities. Stateless, so
 * any number of worker processes can poll the same task queue.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { type NativeConnection, Worker, type State, type WorkerOptions } from '@temporalio/worker';
import type { ClientInterceptors } from '@temporalio/client';
import { SlotRelay } from '../../activities/slot-relay.js';
import { HeldCalls } from '../../activities/held-calls.js';
import { createActivities } from '../../activities/index.js';
import type { SigningKey } from '../../activities/webhook-signature.js';
import type { TaskTokenKeys } from '../../activities/task-token.js';
import type { Config } from '../shared/config.js';
import { DestinationGuard } from '../../activities/destination-guard.js';
import { USER_AGENT } from '../shared/version.js';
import { holderTaskQueue } from '../../workflows/task-contract.js';
import { stagedTaskQueue } from '../../workflows/staged-attempt-contract.js';

const WORKFLOWS_PATH = fileURLToPath(new URL('../../workflows/index.js', import.meta.url));

/**
 * How the worker bundles the workflows (tests bundle them the same way). The SDK evaluates a
 * workflow's modules afresh for every workflow it creates, unless they are preloaded: then once per
 * V8 context, shared and frozen. Ours hold no per-workflow state at module scope (constants, signal
 * and query definitions, an activity proxy that finds its workflow when called), so each task skips
 * evaluating 15 modules (creating a workflow: 0.7 -> 0.45 ms, measured replaying a task's history).
 */
export const WORKFLOW_BUNDLE_OPTIONS = { workflowsPath: WORKFLOWS_PATH, preloadModules: [WORKFLOWS_PATH] };

/**
 * Workflow-task long polls the worker keeps open (the SDK's default is 10, of its 40 workflow-task
 * slots). A workflow task that finds no poll waiting is written to the server's database and read
 * back: at the dev server's limit 1.9 of a task's 3 workflow tasks went that way with 10 polls and
 * 1.1 with 30, and the server's CPU per task fell with it (README, Performance). The SDK's
 * autoscaling polls did worse here (2.2-2.5).
 */
export const WORKFLOW_TASK_POLLS = 30;

/**
 * Workflow tasks the worker may hold at once (the SDK's default: 40). Each open poll holds one of
 * them, and a start is eager (`npm start`: the task starts through this worker's connection and
 * the server hands its first workflow task over in the answer) only when one is free. At 45
 * tasks/s on the dev server in a file, 30 % of the starts were eager with 40 slots, all with 100
 * (e2e p50 496 -> 204 ms). With the engine saturated 100 were too few: 80-91 % of the starts were
 * eager, and the tasks whose later workflow tasks found no slot waited behind the new ones (e2e
 * p99 7.9-12.5 s in the closed loop); with 200, 98-99 % and 3.1-4.0 s (docs/performance.md,
 * 2026-12-06). The workflow thread still runs one activation at a time: the slots only let the
 * worker take tasks a moment earlier.
 */
export const WORKFLOW_TASK_SLOTS = 200;

/**
 * One worker process's Temporal workers: the task queue's (workflows, callbacks, webhooks); one
 * on a task queue of its own, named as its identity, where a cancel's `abortHeldCall` reaches the
 * calls this process holds (activities/held-calls.ts); and one for the queue staged flow-controlled
 * attempts had before they ran on the task queue (activities/staged-attempts.ts), for those
 * scheduled there by tasks that parked before the marker `staged-on-task-queue`.
 */
export class TaskWorker {
  constructor(
    private readonly main: Worker,
    private readonly others: Worker[],
    private readonly relay: SlotRelay,
  ) {}

  async run(): Promise<void> {
    await Promise.all([this.main.run(), ...this.others.map((worker) => worker.run())]);
  }

  shutdown(): void {
    // Parked staged attempts stand down now (their tasks park again elsewhere) rather than hold
    // the shutdown for its whole grace time; calls in flight get the grace time as before.
    this.relay.standDownAll('worker shutdown');
    for (const worker of [this.main, ...this.others]) if (worker.getState() === 'RUNNING') worker.shutdown();
  }

  getState(): State {
    return this.main.getState();
  }
}

/** Stops polling and lets in-flight calls finish within the grace time; safe to call twice. */
export async function stopWorker(worker: TaskWorker, running: Promise<void>): Promise<void> {
  worker.shutdown();
  await running;
}

export interface TaskWorkerOptions {
  config: Config;
  connection: NativeConnection;
  signingKeys: readonly SigningKey[];
  taskTokens: TaskTokenKeys;
  /** Tests replace DNS so that names resolve to loopback addresses. */
  guard?: DestinationGuard;
  /** A prebuilt bundle (tests share one); default: bundle with `WORKFLOW_BUNDLE_OPTIONS` at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /**
   * Interceptors of the client the activities signal and describe workflows with (tracing; tests
   * slow signals down to order what a loaded server may order so).
   */
  clientInterceptors?: ClientInterceptors;
}

export async function createTaskWorker(options: TaskWorkerOptions): Promise<TaskWorker> {
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
  const heldCalls = new HeldCalls();
  // Parked attempts share the activity pool with calls and webhooks: they never take more than
  // half of it, so a saturated key's parks cannot crowd out the calls of other keys and tasks.
  const parkedAtMost = Math.min(config.worker.maxStagedAttempts, Math.floor(config.worker.maxConcurrentActivities / 2));
  const relay = new SlotRelay(parkedAtMost);
  const activities = createActivities({
    signingKeys: options.signingKeys,
    taskTokens: options.taskTokens,
    dispatcher,
    maxResponseBytes: config.maxResponseBytes,
    userAgent: USER_AGENT,
    heldCalls,
    slotRelay: relay,
  });
  // The identity the server records as the holder of each call this worker starts is the name
  // of the task queue where that call can be cut off.
  const identity = holderTaskQueue(config.taskQueue, randomUUID());
  const interceptors = options.clientInterceptors !== undefined ? { interceptors: { client: options.clientInterceptors } } : {};
  const main = await Worker.create({
    connection: options.connection,
    namespace: config.temporalNamespace,
    taskQueue: config.taskQueue,
    identity,
    ...interceptors,
    ...(options.workflowBundle !== undefined
      ? { workflowBundle: options.workflowBundle }
      : {
          workflowsPath: WORKFLOW_BUNDLE_OPTIONS.workflowsPath,
          bundlerOptions: { preloadModules: WORKFLOW_BUNDLE_OPTIONS.preloadModules },
        }),
    activities,
    // Parked staged attempts take slots of this pool too: at most parkedAtMost (the relay turns more away).
    maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentActivities,
    maxCachedWorkflows: config.worker.maxCachedWorkflows,
    workflowThreadPoolSize: config.worker.workflowThreads,
    workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: WORKFLOW_TASK_POLLS },
    maxConcurrentWorkflowTaskExecutions: WORKFLOW_TASK_SLOTS,
    shutdownGraceTime: config.worker.shutdownGraceMs,
  });
  const holder = await Worker.create({
    connection: options.connection,
    namespace: config.temporalNamespace,
    taskQueue: identity,
    identity,
    ...interceptors,
    activities: { abortHeldCall: activities.abortHeldCall, wakeParkedAttempt: activities.wakeParkedAttempt },
    maxConcurrentActivityTaskExecutions: 100,
    shutdownGraceTime: config.worker.shutdownGraceMs,
  });
  const staged = await Worker.create({
    connection: options.connection,
    namespace: config.temporalNamespace,
    taskQueue: stagedTaskQueue(config.taskQueue),
    // The holder's identity: a parked attempt is found, started or stood down like a held call.
    identity,
    ...interceptors,
    activities: { callCallbackStaged: activities.callCallbackStaged },
    maxConcurrentActivityTaskExecutions: config.worker.maxStagedAttempts,
    shutdownGraceTime: config.worker.shutdownGraceMs,
  });
  return new TaskWorker(main, [holder, staged], relay);
}
