/**
 * Everything under `/v1`, for two audiences under two credentials: apps with an API key
 * (tasks.ts) and callees with their task's `AsyncQueue-Task-Token` (callee.ts, where a key works
 * too). Credentials are identified here, before the rate limit counts the request, and refused
 * after it, so that bad credentials spend only their sender's budget.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import rateLimit from '@fastify/rate-limit';
import type { DestinationGuard } from '../../../activities/destination-guard.js';
import { TASK_TOKEN_HEADER, type TaskTokenKeys } from '../../../activities/task-token.js';
import { RateLimitedError, UnauthorizedError } from '../../shared/errors.js';
import type { ApiKeyVerifier } from '../api-keys.js';
import { batchRoutes } from './batch.js';
import { attemptRoutes } from './attempts.js';
import { calleeRoutes } from './callee.js';
import { operationRoutes } from './operations.js';
import { taskReplayRoutes } from './task-replay.js';
import { taskRoutes } from './tasks.js';
import { scheduleRoutes } from './schedules.js';
import { flowControlRoutes } from './flow-control.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Who is calling: a non-secret id of the API key used (scopes idempotency keys and rate
     * limits), `task:<id>` for a callee with its task's token, `ip:<address>` until credentials
     * check out.
     */
    caller: string;
    /** Credentials were missing or wrong: answered 401 once the rate limit has counted the request. */
    authError: UnauthorizedError | undefined;
  }
  interface FastifyContextConfig {
    /** The route also accepts the task's own token instead of an API key. */
    acceptsTaskToken?: boolean;
  }
}

export interface V1RoutesOptions {
  guard: DestinationGuard;
  apiKeys: ApiKeyVerifier;
  taskTokens: TaskTokenKeys;
  rateLimitPerMinute: number;
  /** Counts new tasks (not idempotent repeats) for /metrics. */
  onTaskCreated: (delayed: boolean) => void;
}

export const v1Routes: FastifyPluginAsyncTypebox<V1RoutesOptions> = async (app, options) => {
  const { apiKeys, taskTokens } = options;
  app.decorateRequest('caller', '');
  app.decorateRequest('authError', undefined);
  // Credentials are checked first, with no Temporal call: a task token is an HMAC of the task id
  // (activities/task-token.ts), so a wrong one is told apart without learning whether the task
  // exists, and a wrong token or key is a 401 for any id.
  app.addHook('onRequest', async (request) => {
    const token = request.headers[TASK_TOKEN_HEADER];
    if (request.routeOptions.config.acceptsTaskToken && typeof token === 'string' && token !== '') {
      const { id } = request.params as { id?: string };
      if (id !== undefined && taskTokens.verify(id, token)) {
        request.caller = `task:${id}`;
        return;
      }
      request.caller = `ip:${request.ip}`;
      request.authError = new UnauthorizedError('invalid AsyncQueue-Task-Token for this task');
      return;
    }
    try {
      request.caller = apiKeys.verify(request);
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
      request.caller = `ip:${request.ip}`;
      request.authError = err;
    }
  });
  // Instance-level preParsing hooks run after every onRequest hook, the rate limit's included.
  app.addHook('preParsing', async (request) => {
    if (request.authError !== undefined) throw request.authError;
  });
  if (options.rateLimitPerMinute > 0) {
    // Per caller: an API key, or a task (its callee, once the token checked out), or else the
    // client's address, so that requests with bad credentials cannot spend anyone else's budget.
    // The count is per API process: N processes allow N times the limit.
    await app.register(rateLimit, {
      max: options.rateLimitPerMinute,
      timeWindow: 60_000,
      hook: 'onRequest',
      keyGenerator: (request) => (request.caller === 'anonymous' ? `ip:${request.ip}` : request.caller),
      errorResponseBuilder: (_request, context) => new RateLimitedError(Math.max(1, Math.ceil(context.ttl / 1000))),
    });
  }

  await app.register(taskRoutes, { guard: options.guard, onTaskCreated: options.onTaskCreated });
  await app.register(batchRoutes, { guard: options.guard, onTaskCreated: options.onTaskCreated });
  await app.register(calleeRoutes);
  await app.register(taskReplayRoutes);
  await app.register(operationRoutes);
  await app.register(attemptRoutes);
  await app.register(scheduleRoutes, { guard: options.guard });
  await app.register(flowControlRoutes);
};
