/** `/v1/tasks`: create, read, list, cancel (CONTRACT). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  CancelTaskBody,
  CreateTaskBody,
  CreatedTaskSchema,
  ErrorSchema,
  ListTasksQuery,
  TaskListSchema,
  TaskParams,
  TaskViewSchema,
} from '../api-schemas.js';
import type { DestinationGuard } from '../destination-guard.js';
import type { ApiKeyVerifier } from '../auth.js';
import { newTaskFromRequest } from '../task-input.js';

export interface TaskRoutesOptions {
  guard: DestinationGuard;
  apiKeys: ApiKeyVerifier;
}

const errors = { 400: ErrorSchema, 401: ErrorSchema, 503: ErrorSchema };

export const taskRoutes: FastifyPluginAsyncTypebox<TaskRoutesOptions> = async (app, { guard, apiKeys }) => {
  app.addHook('onRequest', async (request) => apiKeys.verify(request));

  app.post(
    '/v1/tasks',
    {
      schema: {
        summary: 'Create a task',
        body: CreateTaskBody,
        response: { 202: CreatedTaskSchema, 413: ErrorSchema, 415: ErrorSchema, ...errors },
      },
    },
    async (request, reply) => {
      const task = await newTaskFromRequest(request.body, guard);
      const created = await app.tasks.create(task);
      request.log.info({ taskId: created.id }, 'task created');
      return reply
        .code(202)
        .header('location', `/v1/tasks/${created.id}`)
        .send({ id: created.id, status: created.status, createdAt: created.createdAt });
    },
  );

  app.get(
    '/v1/tasks',
    {
      schema: {
        summary: 'List tasks, newest first',
        querystring: ListTasksQuery,
        response: { 200: TaskListSchema, ...errors },
      },
    },
    async (request) => {
      const { status, limit, cursor } = request.query;
      return app.tasks.list({
        limit: limit ?? 20,
        ...(status !== undefined ? { status } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
    },
  );

  app.get(
    '/v1/tasks/:id',
    {
      schema: {
        summary: 'Read a task',
        params: TaskParams,
        response: { 200: TaskViewSchema, 404: ErrorSchema, ...errors },
      },
    },
    async (request) => app.tasks.get(request.params.id),
  );

  app.post(
    '/v1/tasks/:id/cancel',
    {
      schema: {
        summary: 'Cancel a task',
        params: TaskParams,
        body: CancelTaskBody,
        response: { 202: TaskViewSchema, 404: ErrorSchema, 409: ErrorSchema, ...errors },
      },
    },
    async (request, reply) => {
      const reason = request.body?.reason;
      const view = await app.tasks.cancel(request.params.id, reason);
      request.log.info({ taskId: view.id }, 'task cancel requested');
      return reply.code(202).send(view);
    },
  );
};
