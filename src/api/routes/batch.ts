/** `POST /v1/tasks/batch`: up to 100 creates in one request, one result each (CONTRACT v2). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DestinationGuard } from '../../../activities/destination-guard.js';
import { BatchCreateBody, BatchCreatedSchema, MAX_BATCH_TASKS } from '../batch/batch-schemas.js';
import { createBatch } from '../batch/batch-create.js';
import { documented } from '../schemas.js';
import { bodyErrors, errors, security } from './route-schemas.js';

export interface BatchRoutesOptions {
  guard: DestinationGuard;
  onTaskCreated: (delayed: boolean) => void;
}

/** What an entry's 503 suggests waiting, as the single create's 503 says in Retry-After. */
const ENTRY_RETRY_AFTER_SECONDS = 1;

export const batchRoutes: FastifyPluginAsyncTypebox<BatchRoutesOptions> = async (app, options) => {
  app.post(
    '/v1/tasks/batch',
    {
      schema: {
        summary: 'Create tasks in a batch',
        description:
          `1–${MAX_BATCH_TASKS} create bodies, each with an optional \`idempotencyKey\`. Answers 200 with one result per ` +
          'entry, in order: 202 created, 200 an idempotent repeat (the existing task), or an error status with ' +
          '`error` (400, 409, 413, 503, 500); an entry that fails starts nothing, and never fails the others. Every ' +
          'entry is checked before any starts. A body that is not such a list is a plain 400; the whole body counts ' +
          'against ASYNCQUEUE_BODY_LIMIT_BYTES (413) and the batch as one request against the rate limit.',
        tags: ['tasks'],
        security,
        body: BatchCreateBody,
        response: {
          200: documented(BatchCreatedSchema, 'One result per entry, in order', {
            'retry-after': {
              type: 'integer',
              minimum: 1,
              description: 'set when an entry could not start because Temporal was unavailable (its result is a 503)',
            },
          }),
          ...bodyErrors,
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const results = await createBatch(request.body.tasks, {
        tasks: app.tasks,
        guard: options.guard,
        caller: request.caller,
        log: request.log,
        onTaskCreated: options.onTaskCreated,
      });
      const counts = new Map<number, number>();
      for (const result of results) counts.set(result.status, (counts.get(result.status) ?? 0) + 1);
      request.log.info({ results: Object.fromEntries(counts) }, 'batch create answered');
      if (counts.has(503)) void reply.header('retry-after', String(ENTRY_RETRY_AFTER_SECONDS));
      return reply.code(200).send({ results });
    },
  );
};
