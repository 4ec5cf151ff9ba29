/** `/v1/tasks`: create, read, list, cancel (CONTRACT). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import rateLimit from '@fastify/rate-limit';
import {
  CancelTaskBody,
  CreateTaskBody,
  CreateTaskHeaders,
  CreatedTaskSchema,
  ErrorSchema,
  ListTasksQuery,
  TaskListSchema,
  TaskParams,
  TaskViewSchema,
} from '../api-schemas.js';
import type { DestinationGuard } from '../destination-guard.js';
import type { ApiKeyVerifier } from '../auth.js';
import { RateLimitedError } from '../errors.js';
import { IDEMPOTENCY_HEADER, readIdempotencyKey } from '../idempotency.js';
import { newTaskFromRequest } from '../task-input.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling: a non-secret id of the API key used (scopes idempotency keys). */
    caller: string;
  }
}

export interface TaskRoutesOptions {
  guard: DestinationGuard;
  apiKeys: ApiKeyVerifier;
  rateLimitPerMinute: number;
}

const security = [{ apiKey: [] }];
const errors = { 400: ErrorSchema, 401: ErrorSchema, 429: ErrorSchema, 503: ErrorSchema };

export const taskRoutes: FastifyPluginAsyncTypebox<TaskRoutesOptions> = async (app, options) => {
  const { guard, apiKeys } = options;
  app.decorateRequest('caller', '');
  app.addHook('onRequest', async (request) => {
    request.caller = apiKeys.verify(request);
  });
  if (options.rateLimitPerMinute > 0) {
    // Per caller (API key), counted after authentication so a bad key cannot spend a tenant's
    // budget. The count is per API process: N processes allow N times the limit.
    await app.register(rateLimit, {
      max: options.rateLimitPerMinute,
      timeWindow: 60_000,
      hook: 'preValidation',
      keyGenerator: (request) => (request.caller === 'anonymous' ? `ip:${request.ip}` : request.caller),
      errorResponseBuilder: (_request, context) => new RateLimitedError(Math.max(1, Math.ceil(context.ttl / 1000))),
    });
  }

  app.post(
    '/v1/tasks',
    {
      schema: {
        summary: 'Create a task',
        description:
          'Starts one workflow that calls `callbackUrl` with `payload` and delivers the outcome to `webhookUrl`. ' +
          'Answers at once. With `Idempotency-Key`, a repeat of the same request returns the existing task (200).',
        tags: ['tasks'],
        security,
        body: CreateTaskBody,
        headers: CreateTaskHeaders,
        response: {
          202: CreatedTaskSchema,
          200: TaskViewSchema,
          409: ErrorSchema,
          413: ErrorSchema,
          415: ErrorSchema,
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
      request.log.info({ taskId: view.id }, 'task created');
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
        tags: ['tasks'],
        security,
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
        description: 'Aborts an in-flight callback, starts no further attempt and sends `task.cancelled` to the webhook.',
        tags: ['tasks'],
        security,
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
