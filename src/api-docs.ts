/**
 * The OpenAPI 3.1 document (`/openapi.json`) and interactive docs (`/docs`), generated from the
 * routes' own TypeBox schemas, so the description cannot drift from what the API validates.
 */
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { VERSION } from './version.js';

export async function registerApiDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'AsyncQueue',
        version: VERSION,
        description:
          'Offload long-running HTTP calls: create a task, AsyncQueue calls your callback URL with retries and ' +
          'timeouts, and delivers the result to your webhook URL. Outgoing requests are signed per Standard Webhooks.',
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'one of ASYNCQUEUE_API_KEYS' },
          taskToken: {
            type: 'apiKey',
            in: 'header',
            name: 'AsyncQueue-Task-Token',
            description: "the token a callback request carried; valid for that task's progress, complete and fail",
          },
        },
      },
      tags: [
        { name: 'tasks', description: 'Create, read, list and cancel tasks' },
        { name: 'health', description: 'Liveness and readiness' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
