/** Liveness (`/healthz`: the process answers) and readiness (`/readyz`: Temporal answers too). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { HealthSchema } from '../api-schemas.js';

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', { schema: { response: { 200: HealthSchema } } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { response: { 200: HealthSchema, 503: HealthSchema } } }, async (_request, reply) => {
    if (await app.tasks.ready()) return { status: 'ready' };
    return reply.code(503).header('retry-after', '5').send({ status: 'temporal_unavailable' });
  });
};
