/** `/v1/tasks`: create, read, list, cancel (CONTRACT). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import rateLimit from '@fastify/rate-limit';
import {
  AcceptedSchema,
  CancelTaskBody,
  CompleteBody,
  FailBody,
  ProgressBody,
  CreateTaskBody,
  CreateTaskHeaders,
  CreatedTaskSchema,
  ErrorResponses,
  ErrorSchema,
  ListTasksQuery,
  TaskLocationHeader,
  TaskListSchema,
  TaskParams,
  TaskViewSchema,
  documented,
} from '../api-schemas.js';
import type { DestinationGuard } from '../destination-guard.js';
import type { ApiKeyVerifier } from '../auth.js';
import { RateLimitedError, UnauthorizedError } from '../errors.js';
import { TASK_TOKEN_HEADER, type TaskTokenKeys } from '../../activities/task-token.js';
import { IDEMPOTENCY_HEADER, readIdempotencyKey } from '../idempotency.js';
import { checkDepth, newTaskFromRequest } from '../task-input.js';
import type { JsonValue } from '../../workflows/task-contract.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Who is calling: a non-secret id of the API key used (scopes idempotency keys and rate
     * limits), `task:<id>` for a callee with its task's token, `ip:<address>` until credentials
     * check out.
     */
    caller: string;
    /** Credentials were missing or wrong: answered 401 once the rate limit has counted the request. */
    authError: UnauthorizedError | undefined;
  }
  interface FastifyContextConfig {
    /** The route also accepts the task's own token instead of an API key. */
    acceptsTaskToken?: boolean;
  }
}

export interface TaskRoutesOptions {
  guard: DestinationGuard;
  apiKeys: ApiKeyVerifier;
  taskTokens: TaskTokenKeys;
  rateLimitPerMinute: number;
  /** Counts new tasks (not idempotent repeats) for /metrics. */
  onTaskCreated: (delayed: boolean) => void;
}

const security = [{ apiKey: [] }];
const errors = {
  400: ErrorResponses.badRequest,
  401: ErrorResponses.unauthorized,
  429: ErrorResponses.rateLimited,
  503: ErrorResponses.unavailable,
};
/** Routes with a body: it may be too large or not JSON. */
const bodyErrors = { 413: ErrorResponses.payloadTooLarge, 415: ErrorResponses.unsupportedMediaType };
/** Routes with a task id in the path. */
const taskErrors = { 404: ErrorResponses.notFound };
const conflict = (description: string) => ({ 409: documented(ErrorSchema, description) });

export const taskRoutes: FastifyPluginAsyncTypebox<TaskRoutesOptions> = async (app, options) => {
  const { guard, apiKeys, taskTokens } = options;
  app.decorateRequest('caller', '');
  app.decorateRequest('authError', undefined);
  // Credentials are checked first, with no Temporal call: a task token is an HMAC of the task id
  // (activities/task-token.ts), so a wrong one is told apart without learning whether the task
  // exists, and a wrong token or key is a 401 for any id.
  app.addHook('onRequest', async (request) => {
    const token = request.headers[TASK_TOKEN_HEADER];
    if (request.routeOptions.config.acceptsTaskToken && typeof token === 'string' && token !== '') {
      const { id } = request.params as { id?: string };
      if (id !== undefined && taskTokens.verify(id, token)) {
        request.caller = `task:${id}`;
        return;
      }
      request.caller = `ip:${request.ip}`;
      request.authError = new UnauthorizedError('invalid AsyncQueue-Task-Token for this task');
      return;
    }
    try {
      request.caller = apiKeys.verify(request);
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
      request.caller = `ip:${request.ip}`;
      request.authError = err;
    }
  });
  // Instance-level preParsing hooks run after every onRequest hook, the rate limit's included.
  app.addHook('preParsing', async (request) => {
    if (request.authError !== undefined) throw request.authError;
  });
  if (options.rateLimitPerMinute > 0) {
    // Per caller: an API key, or a task (its callee, once the token checked out), or else the
    // client's address, so that requests with bad credentials cannot spend anyone else's budget.
    // The count is per API process: N processes allow N times the limit.
    await app.register(rateLimit, {
      max: options.rateLimitPerMinute,
      timeWindow: 60_000,
      hook: 'onRequest',
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
          202: documented(CreatedTaskSchema, 'The task was created; its workflow has started', TaskLocationHeader),
          200: documented(TaskViewSchema, 'An idempotent repeat: the task the same key and body created', TaskLocationHeader),
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
        response: { 200: documented(TaskViewSchema, 'The task view'), ...taskErrors, ...errors },
      },
    },
    async (request) => app.tasks.get(request.params.id),
  );

  app.post(
    '/v1/tasks/:id/progress',
    {
      config: { acceptsTaskToken: true },
      schema: {
        summary: 'Report progress',
        description:
          'For the callback server while it works: shown as `progress` in the task view and as the workflow\'s ' +
          'current details in the Temporal UI. Authenticated by an API key or the `AsyncQueue-Task-Token` the ' +
          'callback request carried. Coalesced: the first report of a task reaches its workflow at once, then at most ' +
          'one per ASYNCQUEUE_PROGRESS_INTERVAL, the newest (reads show the newest at once). `data` may encode to at ' +
          'most 4 KiB (413).',
        tags: ['tasks'],
        security: [...security, { taskToken: [] }],
        params: TaskParams,
        body: ProgressBody,
        response: {
          202: documented(AcceptedSchema, 'Progress recorded'),
          ...conflict('The task has already ended'),
          ...taskErrors,
          ...bodyErrors,
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { percent, message, data } = request.body;
      await app.tasks.reportProgress(id, {
        ...(percent !== undefined ? { percent } : {}),
        ...(message !== undefined ? { message } : {}),
        ...(data !== undefined ? { data: checkDepth('data', data) as JsonValue } : {}),
      });
      return reply.code(202).send({ accepted: true });
    },
  );

  app.post(
    '/v1/tasks/:id/complete',
    {
      config: { acceptsTaskToken: true },
      schema: {
        summary: 'Complete an accepted callback',
        description:
          'For a callback that answered `202` with the header `AsyncQueue-Completion: async` (a plain `202` is a ' +
          'success like any 2xx): ends its attempt with `result`, as a 2xx answer would. 409 when no attempt awaits ' +
          'completion; 413 for a result over ASYNCQUEUE_MAX_RESPONSE_BYTES once encoded.',
        tags: ['tasks'],
        security: [...security, { taskToken: [] }],
        params: TaskParams,
        body: CompleteBody,
        response: {
          202: documented(TaskViewSchema, 'The attempt has ended; the task view'),
          ...conflict('No callback attempt of the task awaits completion'),
          ...taskErrors,
          ...bodyErrors,
          ...errors,
          503: ErrorResponses.completionUnavailable,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const result = checkDepth('result', request.body.result) as JsonValue;
      const view = await app.tasks.completeAttempt(id, { result });
      request.log.info({ taskId: id }, 'callback completed asynchronously');
      return reply.code(202).send(view);
    },
  );

  app.post(
    '/v1/tasks/:id/fail',
    {
      config: { acceptsTaskToken: true },
      schema: {
        summary: 'Fail an accepted callback',
        description:
          'For a callback that answered `202` with the header `AsyncQueue-Completion: async`: ends its attempt with ' +
          'an error. Retried like a 5xx while retries remain, unless `retryable` is false.',
        tags: ['tasks'],
        security: [...security, { taskToken: [] }],
        params: TaskParams,
        body: FailBody,
        response: {
          202: documented(TaskViewSchema, 'The attempt has ended; the task view'),
          ...conflict('No callback attempt of the task awaits completion'),
          ...taskErrors,
          ...bodyErrors,
          ...errors,
          503: ErrorResponses.completionUnavailable,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const view = await app.tasks.completeAttempt(id, {
        error: request.body.error,
        retryable: request.body.retryable ?? true,
      });
      request.log.info({ taskId: id }, 'callback failed asynchronously');
      return reply.code(202).send(view);
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
      request.log.info({ taskId: view.id }, 'task cancel requested');
      return reply.code(202).send(view);
    },
  );
};
