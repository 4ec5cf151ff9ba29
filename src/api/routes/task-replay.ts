/** `POST /v1/tasks/{id}/replay`: a new task from an ended one (CONTRACT v2, "Replay and bulk actions"). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ReplayTaskBody, ReplayedTaskSchema } from '../operation-schemas.js';
import { CreateTaskHeaders, TaskLocationHeader, TaskParams, TaskViewSchema, documented } from '../schemas.js';
import { IDEMPOTENCY_HEADER, readIdempotencyKey } from '../tasks/idempotency.js';
import { bodyErrors, conflict, errors, security, taskErrors } from './route-schemas.js';

export const taskReplayRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/v1/tasks/:id/replay',
    {
      schema: {
        summary: 'Replay a task',
        description:
          "Starts a new task with the ended original's callback, payload, headers, method, webhook, flow control, " +
          'priority and labels, and `replayOf` pointing back; `delay` (default 0), `retries` and `timeout` (default: ' +
          "the original's) may be overridden. The original is untouched. With `Idempotency-Key`, a repeat of the same " +
          'request returns the replay it started (200).',
        tags: ['tasks'],
        security,
        params: TaskParams,
        body: ReplayTaskBody,
        headers: CreateTaskHeaders,
        response: {
          202: documented(ReplayedTaskSchema, 'The replay was created; its workflow has started', TaskLocationHeader),
          200: documented(TaskViewSchema, 'An idempotent repeat: the replay the same key and body created', TaskLocationHeader),
          ...conflict('The original has not ended, or the Idempotency-Key was used for a different request'),
          ...taskErrors,
          ...bodyErrors,
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const key = readIdempotencyKey(request.headers[IDEMPOTENCY_HEADER]);
      const { delay, retries, timeout } = request.body ?? {};
      const { task, created } = await app.tasks.replay(
        request.params.id,
        {
          ...(delay !== undefined ? { delay } : {}),
          ...(retries !== undefined ? { retries } : {}),
          ...(timeout !== undefined ? { timeout } : {}),
        },
        key !== undefined ? { caller: request.caller, key } : undefined,
      );
      void reply.header('location', `/v1/tasks/${task.id}`);
      if (!created) return reply.code(200).send(task);
      request.log.info({ replayTaskId: task.id }, 'task replayed');
      return reply.code(202).send({ id: task.id, status: task.status, createdAt: task.createdAt, replayOf: request.params.id });
    },
  );
};
