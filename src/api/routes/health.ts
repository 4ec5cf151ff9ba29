/** Liveness (`/healthz`: the process answers) and readiness (`/readyz`: Temporal answers too). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { HealthSchema, documented, retryAfter } from '../schemas.js';

/** Health checks answer even when the API sheds load: an overloaded process is not a dead one. */
const exemptFromLoadShedding = { pressureHandler: () => undefined };

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness', tags: ['health'], response: { 200: HealthSchema } }, config: exemptFromLoadShedding },
    async () => ({ status: 'ok' }),
  );

  const readiness = {
    schema: {
      summary: 'Readiness: Temporal is reachable',
      tags: ['health'],
      response: { 200: HealthSchema, 503: documented(HealthSchema, 'Temporal is not reachable', { 'retry-after': retryAfter }) },
    },
    config: exemptFromLoadShedding,
  };
  app.get('/readyz', readiness, async (_request, reply) => {
    if (await app.tasks.ready()) return { status: 'ready' };
    return reply.code(503).header('retry-after', '5').send({ status: 'temporal_unavailable' });
  });
};
