/**
 * What the books check task by task: whether a task's end is right for its kind, which faults were
 * near it, and what the receiver saw of its webhooks and callbacks.
 */
import { isRecord } from '../shared/json-values.js';
import { faults } from './faults.js';
import { ENDINGS, KINDS, type SoakTask } from './task-mix.js';
import type { Traffic } from './traffic.js';

export function faultsAround(task: SoakTask): string[] {
  const from = task.sentAt - 5_000;
  const endedAt = task.final !== undefined ? Date.parse(task.final.updatedAt) : Number.NaN;
  const to = Number.isFinite(endedAt) ? endedAt + 1_000 : task.sentAt + 60_000;
  return faults.filter((f) => Date.parse(f.at) >= from && Date.parse(f.at) <= to).map((f) => `${f.at} ${f.fault}: ${f.detail}`);
}

/** Why this task's end is wrong for its kind, or undefined when it is right. */
export function outcomeProblem(task: SoakTask, traffic: Traffic): string | undefined {
  const view = task.final;
  if (view === undefined || !ENDINGS.includes(view.status)) return undefined; // counted as stuck
  const expected = KINDS[task.kind].expect;
  const failedAfterCancel = failedAfterAcceptedCancel(task);
  if (failedAfterCancel !== undefined) return failedAfterCancel;
  // A cancel that reaches a task that has already ended is "late", not wrong; counted separately.
  const cancelLate = task.kind === 'cancelled' && view.status !== 'cancelled';
  if (!cancelLate && view.status !== expected) {
    return `expected ${expected}, ended ${view.status} (${view.error?.code ?? 'no error'}: ${view.error?.message ?? ''})`;
  }
  if (expected === 'succeeded' && (!isRecord(view.result) || view.result.marker !== task.body.payload.marker)) {
    return `result does not echo marker ${task.body.payload.marker}: ${JSON.stringify(view.result)}`;
  }
  if (task.kind === 'failing' && (view.error?.code !== 'callback_http_status' || view.error.statusCode !== 422)) {
    return `failed with ${JSON.stringify(view.error)}, expected callback_http_status 422`;
  }
  const told = traffic.delivered(view.id).map((hit) => hit.status);
  if (told.some((status) => status !== view.status)) return `webhook said ${told.join(',')} but the task is ${view.status}`;
  return undefined;
}

/**
 * A cancelled-kind task whose cancel was accepted (202) and which only failed afterwards: the
 * signal was in its history before it ended, and its callback hangs, so only the cancel could end
 * it. Failing it instead breaks the cancel contract (the webhook says task.failed).
 */
function failedAfterAcceptedCancel(task: SoakTask): string | undefined {
  const view = task.final;
  if (task.kind !== 'cancelled' || view?.status !== 'failed' || task.cancelAcceptedAt === undefined) return undefined;
  const endedAt = Date.parse(view.updatedAt);
  if (!(endedAt >= task.cancelAcceptedAt)) return undefined;
  return (
    `cancel accepted (202) at ${new Date(task.cancelAcceptedAt).toISOString()}, yet the task ended failed at ${view.updatedAt} ` +
    `after ${view.attempts} of ${view.retries + 1} attempts (${view.error?.code}: ${view.error?.message})`
  );
}

/** Webhook messages accepted more than once (at-least-once delivery: allowed), and forged ones. */
export function webhookStats(traffic: Traffic): { duplicates: number; badSignatures: number } {
  const accepted = new Map<string, number>();
  let badSignatures = 0;
  for (const hits of traffic.webhooks.values()) {
    for (const hit of hits) {
      if (!hit.signatureOk) badSignatures++;
      if (hit.answered < 300) accepted.set(hit.messageId, (accepted.get(hit.messageId) ?? 0) + 1);
    }
  }
  const duplicates = [...accepted.values()].reduce((sum, count) => sum + Math.max(0, count - 1), 0);
  return { duplicates, badSignatures };
}

/** Callback requests beyond what each kind needs: calls repeated because a kill cut them off. */
export function callbackDuplicates(created: readonly SoakTask[], traffic: Traffic): { extra: number; tasks: number } {
  let extra = 0;
  let tasks = 0;
  for (const task of created) {
    const beyond = (traffic.callbacks.get(task.id as string)?.length ?? 0) - KINDS[task.kind].expectedCallbacks;
    if (beyond > 0) {
      extra += beyond;
      tasks++;
    }
  }
  return { extra, tasks };
}

/** Create (first request sent) → first accepted webhook, ms, for the tasks that have one. */
export function webhookLatencies(tasks: readonly SoakTask[], traffic: Traffic): number[] {
  return tasks
    .map((task) => {
      const first = traffic.delivered(task.id as string)[0];
      return first === undefined ? undefined : first.at - task.sentAt;
    })
    .filter((ms): ms is number => ms !== undefined);
}
