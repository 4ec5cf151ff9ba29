/** `/v1/tasks` for apps (API key): create, read, list, cancel (CONTRACT). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DestinationGuard } from '../../../activities/destination-guard.js';
import {
  CancelTaskBody,
  CreateTaskBody,
  CreateTaskHeaders,
  CreateTaskQuery,
  CreatedTaskSchema,
  ListTasksQuery,
  ReadTaskQuery,
  TaskLocationHeader,
  TaskListSchema,
  TaskParams,
  TaskViewSchema,
  documented,
} from '../schemas.js';
import { IDEMPOTENCY_HEADER, readIdempotencyKey } from '../tasks/idempotency.js';
import { newTaskFromRequest } from '../tasks/task-input.js';
import { isTerminal } from '../../../workflows/task-contract.js';
import { bodyErrors, conflict, errors, security, taskErrors } from './route-schemas.js';
import { clientGone } from './client-gone.js';
import { WaitInterruptedError } from '../tasks/task-end-watch.js';

export interface TaskRoutesOptions {
  guard: DestinationGuard;
  /** Counts new tasks (not idempotent repeats) for /metrics. */
  onTaskCreated: (delayed: boolean) => void;
}

export const taskRoutes: FastifyPluginAsyncTypebox<TaskRoutesOptions> = async (app, options) => {
  const { guard } = options;
  app.post(
    '/v1/tasks',
    {
      schema: {
        summary: 'Create a task',
        description:
          'Starts one workflow that calls `callbackUrl` with `payload` and delivers the outcome to `webhookUrl`. ' +
          'Answers at once. With `Idempotency-Key`, a repeat of the same request returns the existing task (200). ' +
          'With `?wait=N` (1–60) a new task is waited for: `200` with its final view (result included) when it ends ' +
          'within N seconds, else the usual `202`; so a short callee call costs one round trip.',
        tags: ['tasks'],
        security,
        body: CreateTaskBody,
        headers: CreateTaskHeaders,
        querystring: CreateTaskQuery,
        response: {
          202: documented(
            CreatedTaskSchema,
            'The task was created; its workflow has started (with `?wait=N`: it had not ended after N seconds)',
            TaskLocationHeader,
          ),
          200: documented(
            TaskViewSchema,
            'Two meanings, told apart by `status`: with `?wait=N`, the new task ended within N seconds and this is its ' +
              'final view (`succeeded`, `failed` or `cancelled`, result included); or an idempotent repeat (no waiting), ' +
              'the task the same key and body created, in whatever status it has now',
            TaskLocationHeader,
          ),
          ...conflict('The Idempotency-Key was used for a different request'),
          ...bodyErrors,
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const key = readIdempotencyKey(request.headers[IDEMPOTENCY_HEADER]);
      const task = await newTaskFromRequest(request.body, guard);
      const { task: view, created } = await app.tasks.create(
        task,
        key !== undefined ? { caller: request.caller, key } : undefined,
      );
      void reply.header('location', `/v1/tasks/${view.id}`);
      if (!created) {
        request.log.info({ taskId: view.id }, 'idempotent repeat: existing task returned');
        return reply.code(200).send(view);
      }
      options.onTaskCreated(view.delay > 0);
      request.log.info({ taskId: view.id }, 'task created');
      const wait = request.query.wait ?? 0;
      if (wait > 0) {
        const ended = await app.tasks.waitForEnd(view.id, wait * 1000, clientGone(reply));
        if (ended !== undefined && isTerminal(ended.status)) return reply.code(200).send(ended);
      }
      return reply.code(202).send({ id: view.id, status: view.status, createdAt: view.createdAt });
    },
  );

  app.get(
    '/v1/tasks',
    {
      schema: {
        summary: 'List tasks',
        description: 'Tasks in progress first, then ended tasks, the most recently ended first; pages by `cursor`.',
        tags: ['tasks'],
        security,
        querystring: ListTasksQuery,
        response: { 200: documented(TaskListSchema, 'One page of tasks'), ...errors },
      },
    },
    async (request) => {
      const { status, label, scheduleId, limit, cursor } = request.query;
      return app.tasks.list({
        limit: limit ?? 20,
        ...(status !== undefined ? { status } : {}),
        ...(label !== undefined ? { labels: label } : {}),
        ...(scheduleId !== undefined ? { scheduleId } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
    },
  );

  app.get(
    '/v1/tasks/:id',
    {
      schema: {
        summary: 'Read a task',
        description:
          'With `?wait=N` (1–60) a long poll: answers as soon as the task has ended (its final view, result ' +
          'included), or after N seconds with its current view. All clients waiting for one task share one ' +
          'long poll on Temporal.',
        tags: ['tasks'],
        security,
        params: TaskParams,
        querystring: ReadTaskQuery,
        response: {
          200: documented(TaskViewSchema, 'The task view (with `?wait`: final, or current after N seconds)'),
          ...taskErrors,
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const view = await app.tasks.get(id);
      const wait = request.query.wait ?? 0;
      if (wait === 0 || isTerminal(view.status)) return view;
      const ended = await app.tasks.waitForEnd(id, wait * 1000, clientGone(reply));
      // Undefined: the client left (nobody reads this), or the API is shutting down (retry).
      if (ended === undefined) throw new WaitInterruptedError();
      return ended;
    },
  );

  app.post(
    '/v1/tasks/:id/cancel',
    {
      schema: {
        summary: 'Cancel a task',
        description: 'Aborts an in-flight callback, starts no further attempt and sends `task.cancelled` to the webhook.',
        tags: ['tasks'],
        security,
        params: TaskParams,
        body: CancelTaskBody,
        response: {
          202: documented(TaskViewSchema, 'Cancel requested; the task view'),
          ...conflict('The task has already ended'),
          ...taskErrors,
          ...bodyErrors,
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const reason = request.body?.reason;
      const view = await app.tasks.cancel(request.params.id, reason);
      request.log.info('task cancel requested');
      return reply.code(202).send(view);
    },
  );
};
