/** `GET /v1/tasks/{id}/attempts`: every callback and webhook attempt of a task (CONTRACT v2). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AttemptListSchema } from '../attempt-schemas.js';
import { TaskParams, documented } from '../schemas.js';
import { errors, security, taskErrors } from './route-schemas.js';

export const attemptRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/tasks/:id/attempts',
    {
      schema: {
        summary: "List a task's attempts",
        description:
          'Every callback and webhook attempt, oldest first, with its times, outcome, status code, error and the ' +
          'start of the answer. Read from the task’s Temporal history: works for ended tasks, with no worker running.',
        tags: ['tasks'],
        security,
        params: TaskParams,
        response: { 200: documented(AttemptListSchema, "The task's attempts"), ...taskErrors, ...errors },
      },
    },
    async (request) => ({ attempts: await app.tasks.attempts(request.params.id) }),
  );
};
