/**
 * The Temporal client as a named Fastify decorator (`app.tasks`). Routes never build their own
 * connections; the connection closes with the app.
 */
import { createHash } from 'node:crypto';
import fp from 'fastify-plugin';
import { Client, type ConnectionLike } from '@temporalio/client';
import type { Config } from '../../shared/config.js';
import { TaskService } from '../tasks/task-service.js';
import { OperationService } from '../operations/operation-service.js';
import { ScheduleService } from '../schedules/schedule-service.js';
import { lazyClientConnection, type TemporalTarget } from '../../shared/temporal-connection.js';

declare module 'fastify' {
  interface FastifyInstance {
    tasks: TaskService;
    operations: OperationService;
    schedules: ScheduleService;
  }
}

export interface TemporalPluginOptions {
  config: Config;
  target: TemporalTarget;
  /** See AppOptions.eagerStartConnection; the caller owns it and closes it. */
  eagerStartConnection?: ConnectionLike;
  onEagerStart: () => void;
}

export const temporalPlugin = fp<TemporalPluginOptions>(
  async (app, { config, target, eagerStartConnection, onEagerStart }) => {
    const connection = lazyClientConnection(target);
    const client = new Client({ connection, namespace: config.temporalNamespace });
    const eagerStarts =
      eagerStartConnection !== undefined
        ? { client: new Client({ connection: eagerStartConnection, namespace: config.temporalNamespace }), onEagerStart }
        : undefined;
    // Derived from what every API process of a deployment shares, so any of them accepts a
    // cursor another issued; rotating all API keys retires outstanding cursors.
    const cursorKey = createHash('sha256')
      .update(['asyncqueue-cursor-v1', config.temporalNamespace, ...[...config.apiKeys].sort()].join('\n'))
      .digest();
    app.decorate(
      'tasks',
      new TaskService(client, {
        namespace: config.temporalNamespace,
        taskQueue: config.taskQueue,
        policy: config.policy,
        queryTimeoutMs: config.queryTimeoutMs,
        rpcTimeoutMs: config.temporalRpcTimeoutMs,
        maxWaitPolls: config.maxWaitPolls,
        progressIntervalMs: config.progressIntervalMs,
        maxResultBytes: config.maxResponseBytes,
        onProgressDropped: (taskId, err) => app.log.warn({ taskId, err }, 'a held-back progress report could not be delivered'),
        cursorKey,
        ...(eagerStarts !== undefined ? { eagerStarts } : {}),
      }),
    );
    app.decorate(
      'operations',
      new OperationService(client, {
        namespace: config.temporalNamespace,
        taskQueue: config.taskQueue,
        policy: config.policy,
        queryTimeoutMs: config.queryTimeoutMs,
        rpcTimeoutMs: config.temporalRpcTimeoutMs,
      }),
    );
    app.decorate(
      'schedules',
      new ScheduleService(
        app.tasks.calls,
        { namespace: config.temporalNamespace, taskQueue: config.taskQueue, policy: config.policy, cursorKey },
        app.tasks.flowControl,
      ),
    );
    // Before the server waits for requests in flight: a `?wait` may otherwise hold it for a minute.
    app.addHook('preClose', async () => {
      await app.tasks.endWaits();
    });
    app.addHook('onClose', async () => {
      await app.operations.close();
      await app.tasks.close();
      await connection.close();
    });
  },
  { name: 'temporal' },
);
