/**
 * The API as a Fastify app. `api-main.ts` and `main.ts` only listen and shut down; the tests build
 * the same app and drive it over real sockets.
 */
import { STATUS_CODES, maxHeaderSize } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { ConnectionLike } from '@temporalio/client';
import underPressure from '@fastify/under-pressure';
import { registerApiDocs } from './plugins/openapi.js';
import { registerApiMetrics } from './plugins/metrics.js';
import { ApiKeyVerifier } from './api-keys.js';
import type { Config } from '../shared/config.js';
import { DestinationGuard } from '../../activities/destination-guard.js';
import { AsyncQueueError, OverloadedError } from '../shared/errors.js';
import { healthRoutes } from './routes/health.js';
import { loadTaskTokenSecrets } from '../shared/server-secrets.js';
import { v1Routes } from './routes/v1.js';
import { temporalPlugin } from './plugins/temporal.js';
import { validationMessage, validatorFor, type ValidationIssue } from './request-validation.js';
import type { TemporalTarget } from '../shared/temporal-connection.js';

const OVERLOAD_RETRY_AFTER_SECONDS = 2;
/** A task's own URL; `/v1/tasks/batch` is not one (its log lines carry no task id). */
const TASK_URL = /^\/v1\/tasks\/(?!batch(?:[/?#]|$))([^/?#]{1,64})/;
/**
 * The router answers a longer path parameter 414 before any route runs (find-my-way's default is
 * 100). As long as the whole request head may be, so that a parameter's length is judged by its
 * schema alone (an id over 64 characters is a 400 naming `id`), and a longer URL is Node's 431.
 */
const MAX_PARAM_LENGTH = maxHeaderSize;

export interface AppOptions {
  config: Config;
  target: TemporalTarget;
  logger?: FastifyServerOptions['logger'];
  /** Tests replace DNS so that names resolve to loopback addresses. */
  guard?: DestinationGuard;
  /** The in-process worker's Prometheus endpoint, appended to /metrics (`npm start`). */
  workerMetricsUrl?: string;
  /**
   * The connection of a worker in this process polling `config.taskQueue` (`npm start`): tasks
   * start through it with Temporal's eager start (task-service.ts). Only for a worker that runs as
   * long as the app; the caller closes it after the app.
   */
  eagerStartConnection?: ConnectionLike;
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel, redact: ['req.headers.authorization'] },
    // Every line a request logs about a task carries its id, from "incoming request" on.
    childLoggerFactory: (logger, bindings, childOptions, rawRequest) => {
      const taskId = TASK_URL.exec(rawRequest.url ?? '')?.[1];
      return logger.child(taskId !== undefined ? { ...bindings, taskId } : bindings, childOptions);
    },
    bodyLimit: config.bodyLimitBytes,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // The router's and the HTTP parser's own answers (400 for bad percent-encoding; 408, 431)
    // carry the same error body as every other answer, as the OpenAPI document says.
    frameworkErrors: (error, _request, reply) => {
      const { statusCode, code, message } = describeFrameworkError(error);
      void (reply as FastifyReply).code(statusCode).send({ error: { code, message } });
    },
    clientErrorHandler: answerClientError,
    // A payload is the app's JSON, delivered as sent: `__proto__` and `constructor` keys are data.
    // JSON.parse makes them own properties, so no prototype is touched; the validator refuses them
    // where the schema has fixed fields.
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
    // A stalled client must not hold a socket forever: 408 after requestTimeout, checked every
    // second rather than Node's default 30 s. Node only honours requestTimeout when headersTimeout
    // is not larger (Fastify sets it after creating the server, past Node's own check), so both go
    // to the server here. Keep-alive outlives typical load-balancer idle timeouts.
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: 72_000,
    http: {
      connectionsCheckingInterval: 1_000,
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: Math.min(config.requestTimeoutMs, 30_000),
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // JSON bodies are validated strictly: "3" is not a number of retries. Query strings and path
  // parameters arrive as text, so they (and only they) are coerced.
  const strict = validatorFor({ coerceTypes: false });
  const coercing = validatorFor({ coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict.compile(schema) : coercing.compile(schema)));

  // On close, answers still in flight tell their clients to hang up: otherwise a keep-alive socket
  // holds the server open until keepAliveTimeout runs out, long after the last response.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) void reply.header('connection', 'close');
    return payload;
  });

  // The API speaks JSON only; anything else is a 415, not a string that fails validation later.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { statusCode, code, message } = describeError(error);
    if (statusCode >= 500) request.log.error({ err: error }, 'request failed');
    const retryAfter = error instanceof AsyncQueueError ? error.retryAfterSeconds : undefined;
    if (retryAfter !== undefined && !reply.hasHeader('retry-after')) void reply.header('retry-after', String(retryAfter));
    // RFC 9110: a 401 names the scheme that would be accepted.
    if (statusCode === 401) void reply.header('www-authenticate', 'Bearer');
    return reply
      .code(statusCode)
      .send({ error: { code, message: statusCode >= 500 && statusCode !== 503 ? 'internal error' : message } });
  });
  // A known path asked with a method it does not have (TRACE, DELETE, …) is a 405 naming the ones
  // it has (RFC 9110), not a 404: the router alone cannot tell the two apart.
  const routes: Array<{ path: RegExp; methods: string[] }> = [];
  const staticRoutes = new Map<string, string[]>();
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    routes.push({ path: routePattern(route.url), methods });
    if (!/[:*]/.test(route.url)) staticRoutes.set(route.url, [...new Set([...(staticRoutes.get(route.url) ?? []), ...methods])]);
  });
  // Answered on arrival, before a body is read: a QUERY without Content-Type or a TRACE with an odd
  // one is still a 405, not a 400 or 415 about a body no route would take.
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?', 1)[0] ?? '';
    // A path with routes of its own is not also a parameter's value: `GET /v1/tasks/batch` is a
    // 405 (only POST is documented there), not a read of task "batch".
    const own = staticRoutes.get(path);
    // A route registered at this very path matched, not a parameter's. A plugin's `/` under a
    // prefix matches the prefix with and without its trailing slash as one route (`GET /docs`),
    // while onRoute reports only its HEAD twin at `/docs/`: without this, GET /docs/ was a 405.
    const matched = request.routeOptions.url;
    const matchedItself = matched === path || `${matched}/` === path;
    if (!request.is404 && (own === undefined || own.includes(request.method) || matchedItself)) return;
    const allowed = own ?? [...new Set(routes.filter((route) => route.path.test(path)).flatMap((route) => route.methods))];
    if (allowed.length === 0 || allowed.includes(request.method)) return;
    return reply
      .code(405)
      .header('allow', allowed.join(', '))
      .send({
        error: { code: 'method_not_allowed', message: `${request.method} is not allowed here; use ${allowed.join(', ')}` },
      });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { code: 'not_found', message: `no route for ${request.method} ${request.url}` } }),
  );

  const guard =
    options.guard ??
    new DestinationGuard({
      allowPrivateNetworks: config.allowPrivateNetworks,
      allowedDestinations: config.allowedDestinations,
    });
  if (config.maxEventLoopDelayMs > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: config.maxEventLoopDelayMs,
      // Sampled once a second (the library's default): a loop blocked for a whole window also
      // counts as overloaded, and shorter windows would shed load on every GC pause.
      sampleInterval: 1_000,
      pressureHandler: async () => {
        throw new OverloadedError(OVERLOAD_RETRY_AFTER_SECONDS);
      },
    });
  }
  const apiKeys = new ApiKeyVerifier(config.apiKeys);
  // Same keys as the API: counts and latencies are nobody else's business.
  const metrics = registerApiMetrics(app, {
    workerMetricsUrl: options.workerMetricsUrl,
    authorize: (request) => apiKeys.verify(request),
  });
  await registerApiDocs(app);
  await app.register(temporalPlugin, {
    config,
    target: options.target,
    ...(options.eagerStartConnection !== undefined ? { eagerStartConnection: options.eagerStartConnection } : {}),
    onEagerStart: () => metrics.tasksStartedEagerly.inc(),
  });
  await app.register(healthRoutes);
  const taskTokens = await loadTaskTokenSecrets(config.taskTokenSecrets, config.dataDir);
  await app.register(v1Routes, {
    guard,
    apiKeys,
    taskTokens: taskTokens.keys,
    rateLimitPerMinute: config.rateLimitPerMinute,
    onTaskCreated: (delayed) => metrics.tasksCreated.inc({ delay: delayed ? 'yes' : 'no' }),
  });
  return app;
}

/** `/v1/tasks/:id/cancel` → a regex for the concrete paths the router would match to it. */
function routePattern(url: string): RegExp {
  const source = url
    .split(/(:[A-Za-z0-9_]+|\*)/)
    .map((part) => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}

function describeFrameworkError(error: FastifyError): { statusCode: number; code: string; message: string } {
  switch (error.code) {
    case 'FST_ERR_MAX_PARAM_LENGTH': // cannot happen while MAX_PARAM_LENGTH is the header limit
      return { statusCode: 414, code: 'uri_too_long', message: `path: a segment is longer than ${MAX_PARAM_LENGTH} characters` };
    case 'FST_ERR_BAD_URL':
      return { statusCode: 400, code: 'invalid_request', message: 'path: is not valid percent-encoding' };
    default:
      return { statusCode: 500, code: 'internal_error', message: 'internal error' };
  }
}

/**
 * Requests Node's HTTP parser refuses never reach Fastify's handlers; Fastify's default answer has
 * another body than the rest of the API.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [statusCode, code, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'headers_too_large', `headers: the request line and headers are larger than ${maxHeaderSize} bytes`]
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'request_timeout', 'request: did not arrive in time']
        : [400, 'bad_request', `request: is not valid HTTP (${error.code ?? 'parse error'})`];
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

/** Maps any error reaching Fastify onto the CONTRACT's `{ error: { code, message } }`. */
function describeError(error: FastifyError): { statusCode: number; code: string; message: string } {
  if (error instanceof AsyncQueueError) {
    return { statusCode: error.statusCode, code: error.code, message: error.message };
  }
  if (error.validation) {
    const issues = error.validation as ValidationIssue[];
    // An `anyOf` with its own message (flow control's "needs parallelism, rate or both") says
    // more than the `required` of its first branch, which Ajv lists before it.
    const issue =
      issues.find((found) => found.keyword === 'anyOf' && typeof found.parentSchema?.errorMessage === 'string') ?? issues[0];
    return {
      statusCode: 400,
      code: 'invalid_request',
      message: issue ? validationMessage(issue, error.validationContext) : error.message,
    };
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { statusCode: 413, code: 'payload_too_large', message: 'request body is larger than the limit' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { statusCode: 415, code: 'unsupported_media_type', message: 'send the body as application/json' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { statusCode: 400, code: 'invalid_json', message: 'body: the JSON body is empty' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { statusCode: 400, code: 'invalid_json', message: `body: ${error.message}` };
  }
  const statusCode = error.statusCode ?? 500;
  if (statusCode >= 400 && statusCode < 500) {
    const code = error instanceof SyntaxError ? 'invalid_json' : 'bad_request';
    return { statusCode, code, message: error instanceof SyntaxError ? `body: ${error.message}` : error.message };
  }
  return { statusCode: 500, code: 'internal_error', message: error.message };
}
