/** `/v1/flow-control` for apps (API key): read, set, pause and resume a key's limits (CONTRACT v2). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorSchema, documented } from '../schemas.js';
import {
  FlowKeyListSchema,
  FlowKeyParams,
  FlowKeyViewSchema,
  FlowLimitsBody,
  ListFlowKeysQuery,
} from '../flow-control/flow-control-schemas.js';
import { limitsFromBody } from '../flow-control/flow-limits.js';
import { bodyErrors, errors, security } from './route-schemas.js';

const notFound = { 404: documented(ErrorSchema, 'No task or PUT has named this key') };
const tags = ['flow-control'];

export const flowControlRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const flow = app.tasks.flowControl;

  app.get(
    '/v1/flow-control',
    {
      schema: {
        summary: 'List flow-control keys',
        description:
          'Every key a task or PUT named, with its limits and live counts: pages of `limit` keys (default and most 1,000), ' +
          'sorted by key within a page; follow `nextCursor` for the next.',
        tags,
        security,
        querystring: ListFlowKeysQuery,
        response: { 200: documented(FlowKeyListSchema, 'A page of keys'), ...errors },
      },
    },
    async (request) => flow.list(request.query),
  );

  app.get(
    '/v1/flow-control/:key',
    {
      schema: {
        summary: 'Read a flow-control key',
        description: 'Its limits, whether it is paused, the attempts in flight and the tasks waiting for a slot.',
        tags,
        security,
        params: FlowKeyParams,
        response: { 200: documented(FlowKeyViewSchema, 'The key'), ...notFound, ...errors },
      },
    },
    async (request) => flow.get(request.params.key),
  );

  app.put(
    '/v1/flow-control/:key',
    {
      schema: {
        summary: "Set a flow-control key's limits",
        description: 'Replaces the limits (at least one of `parallelism` and `rate`); creates the key if it is new.',
        tags,
        security,
        params: FlowKeyParams,
        body: FlowLimitsBody,
        response: { 200: documented(FlowKeyViewSchema, 'The key with its new limits'), ...bodyErrors, ...errors },
      },
    },
    async (request) => flow.set(request.params.key, limitsFromBody('body', request.body)),
  );

  for (const [action, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    app.post(
      `/v1/flow-control/:key/${action}`,
      {
        schema: {
          summary: paused ? 'Pause a flow-control key' : 'Resume a flow-control key',
          description: paused
            ? 'No new attempt of the key starts (first attempts and retries alike); attempts in flight finish. Holds across restarts.'
            : 'Attempts of the key start again, up to its limits.',
          tags,
          security,
          params: FlowKeyParams,
          response: { 200: documented(FlowKeyViewSchema, 'The key'), ...notFound, ...errors },
        },
      },
      async (request) => flow.setPaused(request.params.key, paused),
    );
  }
};
