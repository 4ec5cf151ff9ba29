/**
 * The OpenAPI 3.1 document (`/openapi.json`) and interactive docs (`/docs`), generated from the
 * routes' own TypeBox schemas, so the description cannot drift from what the API validates.
 * `test/openapi-fuzz.test.ts` holds the server to it with Schemathesis.
 */
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { ErrorSchema } from '../schemas.js';
import { VERSION } from '../../shared/version.js';

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace', 'query'];

/**
 * Answers the HTTP server gives before any route runs (app.ts's clientErrorHandler), so any
 * operation can receive them.
 */
const TRANSPORT_RESPONSES: Record<string, { name: string; description: string }> = {
  408: { name: 'RequestTimeout', description: 'The request did not arrive within ASYNCQUEUE_REQUEST_TIMEOUT' },
  431: {
    name: 'RequestHeaderFieldsTooLarge',
    description: 'The request line and headers together are larger than the HTTP server accepts (16 KiB)',
  },
};

export async function registerApiDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'AsyncQueue',
        version: VERSION,
        description:
          'Offload long-running HTTP calls: create a task, AsyncQueue calls your callback URL with retries and ' +
          'timeouts, and delivers the result to your webhook URL. Outgoing requests are signed per Standard Webhooks.\n\n' +
          'Every error is `{ "error": { "code", "message" } }`; a 400 message starts with the field it is about. ' +
          'A method a path does not list is answered 405 with an `Allow` header.',
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
        { name: 'schedules', description: 'Recurring tasks on Temporal Schedules' },
        { name: 'flow-control', description: 'Limits shared by the tasks of one key: read, set, pause, resume' },
        { name: 'health', description: 'Liveness and readiness' },
      ],
    },
    transformObject: (documentObject) =>
      'openapiObject' in documentObject
        ? completeDocument(documentObject.openapiObject as OpenApiDocument)
        : documentObject.swaggerObject,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

interface OpenApiDocument {
  paths?: Record<string, Record<string, Operation | unknown>>;
  components?: { responses?: Record<string, unknown> } & Record<string, unknown>;
}

interface Operation {
  requestBody?: { required?: boolean; content?: Record<string, { schema?: { anyOf?: Array<{ type?: unknown }> } }> };
  responses?: Record<
    string,
    { headers?: Record<string, { required?: boolean; schema?: { required?: unknown } }> } | { $ref: string }
  >;
}

/** What @fastify/swagger cannot say from route schemas alone. */
function completeDocument<T extends OpenApiDocument>(document: T): T {
  const components = (document.components ??= {});
  components.responses ??= {};
  for (const { name, description } of Object.values(TRANSPORT_RESPONSES)) {
    components.responses[name] = { description, content: { 'application/json': { schema: ErrorSchema } } };
  }
  for (const item of Object.values(document.paths ?? {})) {
    for (const [method, value] of Object.entries(item)) {
      if (!HTTP_METHODS.includes(method)) continue;
      const operation = value as Operation;
      // @fastify/swagger marks every body required; one that may be null may also be left out
      // (Fastify hands an absent body to the validator as null), as the cancel body is.
      const media = operation.requestBody?.content?.['application/json'];
      if (operation.requestBody && media?.schema?.anyOf?.some((branch) => branch.type === 'null')) {
        operation.requestBody.required = false;
      }
      const responses = (operation.responses ??= {});
      for (const response of Object.values(responses)) {
        // A header's `required` belongs to the header object, not to its schema (documented() in api-schemas.ts).
        for (const header of Object.values(('headers' in response ? response.headers : undefined) ?? {})) {
          if (header.schema?.required === true) {
            header.required = true;
            delete header.schema.required;
          }
        }
      }
      for (const [status, { name }] of Object.entries(TRANSPORT_RESPONSES)) {
        responses[status] ??= { $ref: `#/components/responses/${name}` };
      }
    }
  }
  return document;
}
