/** The soak's calls on the task endpoints: create (idempotently), cancel, read, list. */
import type { TaskView } from '../../src/api/tasks/task-service.js';
import { isRecord } from '../shared/json-values.js';
import { callApi, withRetries } from './api-client.js';
import type { SoakTask } from './task-mix.js';

function asTaskView(body: unknown): TaskView | undefined {
  if (!isRecord(body) || typeof body.id !== 'string' || typeof body.status !== 'string') return undefined;
  return body as unknown as TaskView;
}

/** How long a create or a cancel keeps retrying through an outage (a server restart takes seconds). */
export const CREATE_BUDGET_MS = 120_000;
export const CANCEL_BUDGET_MS = 90_000;

/** Creates the task with its Idempotency-Key, retrying through outages with the very same body. */
export async function createTask(baseUrl: string, task: SoakTask): Promise<void> {
  task.sentAt = Date.now();
  const { answer, tries } = await withRetries(CREATE_BUDGET_MS, () =>
    callApi(baseUrl, 'POST', '/v1/tasks', '/v1/tasks', task.body, { 'idempotency-key': task.key }),
  );
  task.createTries = tries;
  const id = isRecord(answer.body) && typeof answer.body.id === 'string' ? answer.body.id : undefined;
  if ((answer.status === 202 || answer.status === 200) && id !== undefined) {
    task.id = id;
    task.idsSeen.add(id);
    if (answer.status === 200) task.repeatAnswers++;
    return;
  }
  task.createError = `gave up after ${tries} tries: ${answer.status} ${JSON.stringify(answer.body)}`;
}

/** Cancels the task, retrying through outages; 409 means it had already ended. */
export async function cancelTask(baseUrl: string, task: SoakTask): Promise<void> {
  const urlPath = `/v1/tasks/${task.id}/cancel`;
  const { answer } = await withRetries(CANCEL_BUDGET_MS, () =>
    callApi(baseUrl, 'POST', '/v1/tasks/:id/cancel', urlPath, { reason: 'soak test' }),
  );
  if (answer.status === 202) task.cancelAcceptedAt = Date.now();
  task.cancel =
    answer.status === 202
      ? 'accepted'
      : answer.status === 409
        ? 'already-ended'
        : answer.status === 404
          ? 'not-found'
          : 'gave-up';
}

export async function readTask(baseUrl: string, id: string): Promise<TaskView | undefined> {
  const answer = await callApi(baseUrl, 'GET', '/v1/tasks/:id', `/v1/tasks/${id}`);
  return answer.status === 200 ? asTaskView(answer.body) : undefined;
}

/** Every task id the list endpoint knows (our dev server holds only this run's tasks). */
export async function listTaskIds(baseUrl: string): Promise<Set<string> | undefined> {
  const ids = new Set<string>();
  let cursor: string | null = null;
  for (let page = 0; page < 1_000; page++) {
    const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const { answer } = await withRetries(30_000, () => callApi(baseUrl, 'GET', '/v1/tasks', `/v1/tasks?limit=100${query}`));
    if (answer.status !== 200 || !isRecord(answer.body) || !Array.isArray(answer.body.tasks)) return undefined;
    for (const item of answer.body.tasks) {
      const view = asTaskView(item);
      if (view !== undefined) ids.add(view.id);
    }
    cursor = typeof answer.body.nextCursor === 'string' ? answer.body.nextCursor : null;
    if (cursor === null) return ids;
  }
  return ids;
}
