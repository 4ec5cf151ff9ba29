/**
 * The books: after the drain, every created task is accounted for — created = succeeded + failed +
 * cancelled, nothing stuck, every outcome the one its kind must reach, every webhook delivered and
 * signed, no Idempotency-Key broken, no unexpected API error — and the verdict is PASS only then.
 */
import type { TaskView } from '../../src/api/tasks/task-service.js';
import { latencyPercentiles } from '../shared/latency.js';
import { apiAnswers, apiErrors } from './api-client.js';
import { faults } from './faults.js';
import { callbackDuplicates, faultsAround, outcomeProblem, webhookLatencies, webhookStats } from './outcome-checks.js';
import type { Running } from './setup.js';
import { ENDINGS, KIND_NAMES, type Ending, type Kind, type SoakTask } from './task-mix.js';

export interface KindBooks {
  created: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  stuck: number;
  mismatches: number;
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
}

export interface TaskProblem {
  taskId: string | undefined;
  key: string;
  kind: Kind;
  createStartedAt: string;
  problem: string;
  /** Faults injected from 5 s before the create until the task ended: the likely culprits. */
  faultsNearby: string[];
  view: TaskView | undefined;
}

export function computeBooks(run: Running, timing: { loadSec: number; drainSec: number; totalSec: number }) {
  const { tasks, traffic } = run;
  const created = tasks.filter((task) => task.id !== undefined);
  const byStatus = (status: Ending) => created.filter((task) => task.final?.status === status).length;
  const succeeded = byStatus('succeeded');
  const failed = byStatus('failed');
  const cancelled = byStatus('cancelled');
  const stuckTasks = created.filter((task) => task.final === undefined || !ENDINGS.includes(task.final.status));
  const problems: TaskProblem[] = [];
  const problem = (task: SoakTask, text: string): void => {
    problems.push({
      taskId: task.id,
      key: task.key,
      kind: task.kind,
      createStartedAt: new Date(task.sentAt).toISOString(),
      problem: text,
      faultsNearby: faultsAround(task),
      view: task.final,
    });
  };

  const mismatched = new Set<SoakTask>();
  for (const task of created) {
    const text = outcomeProblem(task, traffic);
    if (text !== undefined) {
      mismatched.add(task);
      problem(task, `outcome: ${text}`);
    }
  }
  for (const task of stuckTasks) problem(task, `stuck: ${task.final?.status ?? 'never read'}`);
  const cancelLate = created.filter(
    (task) =>
      task.kind === 'cancelled' &&
      task.final !== undefined &&
      ['succeeded', 'failed'].includes(task.final.status) &&
      !mismatched.has(task),
  );
  for (const task of cancelLate) {
    const acceptedAt = task.cancelAcceptedAt === undefined ? '' : ` at ${new Date(task.cancelAcceptedAt).toISOString()}`;
    problem(
      task,
      `cancel arrived late (cancel answer: ${task.cancel ?? 'not sent'}${acceptedAt}; ended ${task.final?.updatedAt}) — allowed`,
    );
  }

  // Delivered = AsyncQueue says so AND the receiver really got (and accepted) it.
  const undelivered = created.filter(
    (task) => task.final?.webhook?.status !== 'delivered' || traffic.delivered(task.id as string).length === 0,
  );
  for (const task of undelivered) {
    if (!stuckTasks.includes(task)) {
      problem(
        task,
        `webhook not delivered: view says ${task.final?.webhook?.status}, receiver accepted ${traffic.delivered(task.id as string).length}`,
      );
    }
  }
  const { duplicates: webhookDuplicates, badSignatures } = webhookStats(traffic);
  const { extra: callbackExtra, tasks: callbackExtraTasks } = callbackDuplicates(created, traffic);
  const latency = (subset: SoakTask[]): number[] => webhookLatencies(subset, traffic);
  const allLatencies = latencyPercentiles(latency(created), 1);

  const byKind = Object.fromEntries(
    KIND_NAMES.map((kind): [Kind, KindBooks] => {
      const ofKind = created.filter((task) => task.kind === kind);
      const latencies = latencyPercentiles(latency(ofKind), 1);
      return [
        kind,
        {
          created: ofKind.length,
          succeeded: ofKind.filter((task) => task.final?.status === 'succeeded').length,
          failed: ofKind.filter((task) => task.final?.status === 'failed').length,
          cancelled: ofKind.filter((task) => task.final?.status === 'cancelled').length,
          stuck: ofKind.filter((task) => stuckTasks.includes(task)).length,
          mismatches: ofKind.filter((task) => mismatched.has(task)).length,
          latencyP50Ms: latencies.p50,
          latencyP99Ms: latencies.p99,
        },
      ];
    }),
  ) as Record<Kind, KindBooks>;

  const createGaveUp = tasks.filter((task) => task.id === undefined);
  for (const task of createGaveUp) problem(task, `create: ${task.createError}`);
  const keyReuse = tasks.filter((task) => task.idsSeen.size > 1).length;
  const idCount = new Set(created.map((task) => task.id)).size;

  const books = {
    run: {
      runId: run.runId,
      engine: run.server.description,
      seed: run.options.seed,
      minutes: run.options.minutes,
      rate: run.options.rate,
      workers: run.options.workers,
      loadSec: timing.loadSec,
      drainSec: timing.drainSec,
      totalSec: timing.totalSec,
    },
    started: tasks.length,
    created: created.length,
    createGaveUp: createGaveUp.length,
    createRetried: tasks.filter((task) => task.createTries > 1).length,
    idempotentRepeats: tasks.reduce((sum, task) => sum + task.repeatAnswers, 0),
    /** One key named two task ids, or two keys one id: the Idempotency-Key promise broken. */
    idempotencyViolations: keyReuse + (created.length - idCount),
    succeeded,
    failed,
    cancelled,
    balanced: created.length === succeeded + failed + cancelled,
    stuck: stuckTasks.length,
    outcomeMismatches: mismatched.size,
    cancelArrivedLate: cancelLate.length,
    cancelAnswers: countBy(created.filter((task) => task.kind === 'cancelled').map((task) => task.cancel ?? 'not-sent')),
    webhooks: {
      expected: created.length,
      delivered: created.length - undelivered.length,
      duplicates: webhookDuplicates,
      firstDeliveryRefused: created.filter((task) => task.body.webhookUrl.endsWith('/hook/flaky')).length,
      badSignatures,
    },
    callbacks: { requests: traffic.callbackCount, duplicates: callbackExtra, tasksWithDuplicates: callbackExtraTasks },
    faults: {
      workerSigterm: faults.filter((f) => f.fault === 'worker-sigterm').length,
      workerSigkill: faults.filter((f) => f.fault === 'worker-sigkill').length,
      serverKill: faults.filter((f) => f.fault === 'server-kill').length,
      historyKill: faults.filter((f) => f.fault === 'history-kill').length,
      frontendKill: faults.filter((f) => f.fault === 'frontend-kill').length,
      postgresRestart: faults.filter((f) => f.fault === 'postgres-restart').length,
      workerDiedUnexpectedly: faults.filter((f) => f.fault === 'worker-died').length,
      /** A cluster process that exited by itself: a finding, and the run fails. */
      clusterDiedUnexpectedly: faults.filter((f) => f.fault === 'cluster-died').length,
      log: faults,
    },
    latencyMs: { p50: allLatencies.p50, p99: allLatencies.p99, max: allLatencies.max },
    byKind,
    listed: undefined as { listed: number; phantom: number; missing: number } | undefined,
    apiAnswers: Object.fromEntries([...apiAnswers.entries()].sort()),
    apiErrors,
    problems: problems.slice(0, 100),
    problemsOmitted: Math.max(0, problems.length - 100),
    ok: false,
  };
  books.ok =
    books.balanced &&
    books.stuck === 0 &&
    books.outcomeMismatches === 0 &&
    books.createGaveUp === 0 &&
    books.idempotencyViolations === 0 &&
    books.webhooks.delivered === books.webhooks.expected &&
    books.webhooks.badSignatures === 0 &&
    books.faults.clusterDiedUnexpectedly === 0 &&
    books.apiErrors.length === 0;
  return books;
}

export type Books = ReturnType<typeof computeBooks>;

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
