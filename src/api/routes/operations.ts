/** `POST /v1/tasks/bulk` and `GET /v1/operations/{id}` (CONTRACT v2, "Replay and bulk actions"). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  BulkBody,
  CreatedOperationSchema,
  OperationLocationHeader,
  OperationParams,
  OperationViewSchema,
} from '../operation-schemas.js';
import { ErrorResponses, documented } from '../schemas.js';
import { ValidationError } from '../../shared/errors.js';
import { IDEMPOTENCY_HEADER, readIdempotencyKey } from '../tasks/idempotency.js';
import { bodyErrors, conflict, errors, security } from './route-schemas.js';

export const operationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/v1/tasks/bulk',
    {
      schema: {
        summary: 'Cancel or replay tasks in bulk',
        description:
          'Starts a durable operation (a Temporal workflow) over the tasks a `filter` selects, or the listed `ids`: ' +
          '`cancel` cancels each matched task that has not ended, as `POST /v1/tasks/{id}/cancel` does; `replay` ' +
          'replays each matched task that has ended, once. A filter selects tasks created before the operation; a ' +
          'filter without any criterion is a 400. Operations run side by side; follow one at `Location`. With ' +
          '`Idempotency-Key`, a repeat of the same request answers 200 with the operation the first one started ' +
          '(a retry after a lost answer starts no second replay); the key with another request is a 409.',
        tags: ['operations'],
        security,
        body: BulkBody,
        response: {
          200: documented(
            CreatedOperationSchema,
            'A repeat of a request with this Idempotency-Key: its operation',
            OperationLocationHeader,
          ),
          202: documented(CreatedOperationSchema, 'The operation has started', OperationLocationHeader),
          ...conflict('The Idempotency-Key was used for a different request'),
          ...bodyErrors,
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const { action, filter, ids } = request.body;
      // The schema's oneOf refuses both and neither already; kept so the types know which one it is.
      if ((filter === undefined) === (ids === undefined)) {
        throw new ValidationError(
          filter === undefined ? 'filter' : 'ids',
          filter === undefined ? 'is required unless ids are given' : 'give either filter or ids, not both',
        );
      }
      const key = readIdempotencyKey(request.headers[IDEMPOTENCY_HEADER]);
      const { operation, created } = await app.operations.start(
        filter !== undefined ? { action, filter } : { action, ids: ids! },
        key !== undefined ? { caller: request.caller, key } : undefined,
      );
      if (created) request.log.info({ operationId: operation.id, action: operation.action }, 'bulk operation started');
      void reply.header('location', `/v1/operations/${operation.id}`);
      return reply
        .code(created ? 202 : 200)
        .send({ id: operation.id, action: operation.action, state: operation.state, createdAt: operation.createdAt });
    },
  );

  app.get(
    '/v1/operations/:id',
    {
      schema: {
        summary: 'Read a bulk operation',
        description: 'Its progress: counts so far, the first per-task errors, and `endedAt` once it has ended.',
        tags: ['operations'],
        security,
        params: OperationParams,
        response: {
          200: documented(OperationViewSchema, 'The operation'),
          404: documented(ErrorResponses.notFound, 'No operation has this id'),
          ...errors,
        },
      },
    },
    async (request) => app.operations.get(request.params.id),
  );
};
