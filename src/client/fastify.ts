/**
 * `asyncqueue/client/fastify`: the receiving side as a Fastify plugin. Its own entry point, so
 * that the main client's types need no Fastify installed.
 */
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { SignatureVerificationError } from './errors.js';
import { verifyRequest, type VerifiedRequest } from './receiver.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by fastifyReceiver once the request's signature checked out. */
    asyncQueue?: Omit<VerifiedRequest, 'body'>;
  }
}

/**
 * A Fastify plugin for the routes AsyncQueue calls: keeps each JSON body raw, verifies it, then
 * parses it into `request.body`; a bad signature gets 401 before the handler runs. Register it in
 * the scope that holds those routes:
 *
 *   app.register(async (scope) => {
 *     await scope.register(fastifyReceiver({ secret }));
 *     scope.post('/api/on-report-ready', async (request) => handle(request.body));
 *   });
 */
export function fastifyReceiver(options: { secret: string | readonly string[] }): FastifyPluginAsync {
  // fastify-plugin: the parser must apply to the scope that registers this, not to a child of it.
  return fp(async (scope) => {
    if (!scope.hasRequestDecorator('asyncQueue')) scope.decorateRequest('asyncQueue', undefined);
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (request, raw, done) => {
      try {
        const verified = verifyRequest(options.secret, raw as string, request.headers);
        request.asyncQueue = { messageId: verified.messageId, taskId: verified.taskId, attempt: verified.attempt };
        done(null, verified.body);
      } catch (err) {
        const error = err as Error & { statusCode?: number };
        error.statusCode = err instanceof SignatureVerificationError ? 401 : 400;
        done(error, undefined);
      }
    });
  });
}
