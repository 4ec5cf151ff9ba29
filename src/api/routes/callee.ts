/**
 * `/v1/tasks/{id}/progress|complete|fail`: for the callee while it works on a task, with the
 * `AsyncQueue-Task-Token` its callback request carried (or an API key); see v1.ts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { JsonValue } from '../../../workflows/task-contract.js';
import {
  AcceptedSchema,
  CompleteBody,
  ErrorResponses,
  FailBody,
  ProgressBody,
  TaskParams,
  TaskViewSchema,
  documented,
} from '../schemas.js';
import { checkDepth } from '../tasks/task-input.js';
import { bodyErrors, conflict, errors, security, taskErrors } from './route-schemas.js';

/** What `/complete` and `/fail` answer. */
const completionResponses = {
  202: documented(TaskViewSchema, 'The attempt has ended; the task view'),
  ...conflict('No callback attempt of the task awaits completion'),
  ...taskErrors,
  ...bodyErrors,
  ...errors,
  503: ErrorResponses.completionUnavailable,
};

export const calleeRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/v1/tasks/:id/progress',
    {
      config: { acceptsTaskToken: true },
      schema: {
        summary: 'Report progress',
        description:
          "For the callback server while it works: shown as `progress` in the task view and as the workflow's " +
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
        response: completionResponses,
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const result = checkDepth('result', request.body.result) as JsonValue;
      const view = await app.tasks.completeAttempt(id, { result });
      request.log.info('callback completed asynchronously');
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
        response: completionResponses,
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const view = await app.tasks.completeAttempt(id, {
        error: request.body.error,
        retryable: request.body.retryable ?? true,
      });
      request.log.info('callback failed asynchronously');
      return reply.code(202).send(view);
    },
  );
};
