/**
 * The receiving side: check that a callback or webhook request really comes from AsyncQueue.
 * Built on the `standardwebhooks` library; always verifies the raw body, before any JSON parsing,
 * and rejects timestamps more than five minutes off (replays).
 */
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { SignatureVerificationError } from './errors.js';

export type HeaderBag = Record<string, string | string[] | undefined>;

export interface VerifiedRequest<T = unknown> {
  /** The parsed JSON body. */
  body: T;
  /** `webhook-id`: the same across retries of one message; deduplicate on it. */
  messageId: string;
  taskId: string | undefined;
  attempt: number | undefined;
}

/**
 * Verifies `rawBody` (exactly as received) against the request's signature headers and returns
 * the parsed body. Accepts several secrets (during a rotation); throws SignatureVerificationError.
 */
export function verifyRequest<T = unknown>(
  secret: string | readonly string[],
  rawBody: string | Uint8Array,
  headers: HeaderBag,
): VerifiedRequest<T> {
  const payload = typeof rawBody === 'string' ? rawBody : Buffer.from(rawBody).toString('utf8');
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  const secrets = typeof secret === 'string' ? [secret] : secret;
  let lastError: unknown;
  for (const candidate of secrets) {
    try {
      const body = new Webhook(candidate).verify(payload, flat) as T;
      const attempt = Number(flat['asyncqueue-attempt']);
      return {
        body,
        messageId: flat['webhook-id'] ?? '',
        taskId: flat['asyncqueue-task-id'],
        attempt: Number.isInteger(attempt) ? attempt : undefined,
      };
    } catch (err) {
      lastError = err;
    }
  }
  const reason = lastError instanceof WebhookVerificationError || lastError instanceof Error ? lastError.message : 'invalid';
  throw new SignatureVerificationError(`request signature rejected: ${reason}`, { cause: lastError });
}

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

interface ExpressLikeRequest {
  headers: HeaderBag;
  body?: unknown;
  asyncQueue?: Omit<VerifiedRequest, 'body'>;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'error', listener: (arg?: unknown) => void): unknown;
}
interface ExpressLikeResponse {
  status(code: number): { json(body: unknown): unknown };
}

/**
 * Express middleware with the same contract: put it on AsyncQueue's routes instead of
 * `express.json()` (it reads the raw body itself, or uses the Buffer `express.raw()` left).
 */
export function expressReceiver(options: { secret: string | readonly string[] }) {
  return (request: ExpressLikeRequest, response: ExpressLikeResponse, next: (err?: unknown) => void): void => {
    const verify = (raw: Buffer): void => {
      try {
        const verified = verifyRequest(options.secret, raw, request.headers);
        request.body = verified.body;
        request.asyncQueue = { messageId: verified.messageId, taskId: verified.taskId, attempt: verified.attempt };
        next();
      } catch (err) {
        response.status(401).json({ error: { code: 'invalid_signature', message: (err as Error).message } });
      }
    };
    if (Buffer.isBuffer(request.body)) return verify(request.body);
    const chunks: Buffer[] = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => verify(Buffer.concat(chunks)));
    request.on('error', (err) => next(err));
  };
}
