/**
 * `npm start`: everything in one process for development and small installs — an embedded
 * Temporal dev server (unless TEMPORAL_ADDRESS is set), a worker and the API.
 */
import path from 'node:path';
import type { NativeConnection } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../api/app.js';
import { DevServer, freePort } from './dev-server.js';
import { exitOnBootFailure, loadConfigOrExit, onShutdownSignal } from '../shared/process-lifecycle.js';
import { getRetentionDays, setRetention } from './retention.js';
import { ensureSearchAttributes } from '../shared/search-attributes.js';
import { loadSigningSecrets, loadTaskTokenSecrets } from '../shared/server-secrets.js';
import { lazyClientConnection, type TemporalTarget } from '../shared/temporal-connection.js';
import { connectWorkerConnection } from '../worker/connection.js';
import { createTaskWorker, stopWorker, type TaskWorker } from '../worker/task-worker.js';
import { installWorkerRuntime } from '../worker/runtime.js';

/** What the shutdown stops, each set once it has started. */
interface Running {
  app?: FastifyInstance;
  worker?: { worker: TaskWorker; run: Promise<void> };
  connection?: NativeConnection;
}

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  if (config.worker.nice > 0) {
    process.stderr.write(
      'asyncqueue: ASYNCQUEUE_WORKER_NICE applies to `npm run worker`; here the worker and the API share one process.\n',
    );
  }
  // One process: the worker's metrics (the SDK's and ours) are served through the API's /metrics.
  const metricsAddress = config.workerMetricsAddress ?? `127.0.0.1:${await freePort()}`;
  installWorkerRuntime({ logLevel: config.logLevel, metricsAddress });
  // Stops what has started, in order, whenever the signal comes (during the boot too: the dev
  // server runs in a process group of its own, so no terminal signal stops it but this).
  const running: Running = {};
  let devServer: DevServer | undefined;
  onShutdownSignal(async (signal) => {
    running.app?.log.info({ signal }, 'shutting down');
    await running.app?.close();
    if (running.worker !== undefined) await stopWorker(running.worker.worker, running.worker.run);
    await running.connection?.close();
    await devServer?.stop();
  });
  let target: TemporalTarget = {};
  if (config.temporalAddress === undefined) {
    const dbFile = path.join(config.dataDir, 'temporal.db');
    process.stdout.write(`Starting the embedded Temporal dev server (data in ${dbFile})…\n`);
    await import('node:fs/promises').then((fs) => fs.mkdir(config.dataDir, { recursive: true }));
    devServer = await DevServer.start({
      port: config.devServer.port,
      uiPort: config.devServer.uiPort,
      dbFile,
      namespace: config.temporalNamespace,
      ownProcessGroup: true,
    });
    target = { embeddedAddress: devServer.address };
  }
  const admin = lazyClientConnection(target);
  let retention: string;
  try {
    if (devServer !== undefined) {
      await setRetention(admin, config.temporalNamespace, config.retentionDays);
    } else {
      await ensureSearchAttributes(admin, config.temporalNamespace);
    }
    const days = await getRetentionDays(admin, config.temporalNamespace);
    retention = days === undefined ? 'as the namespace sets it' : `${days} day(s)`;
  } finally {
    await admin.close();
  }

  const secrets = await loadSigningSecrets(config.signingSecrets, config.dataDir);
  const tokens = await loadTaskTokenSecrets(config.taskTokenSecrets, config.dataDir);
  const connection = await connectWorkerConnection(target, config.worker.temporalCompression);
  running.connection = connection;
  const worker = await createTaskWorker({ config, connection, signingKeys: secrets.keys, taskTokens: tokens.keys });
  const workerRun = worker.run();
  running.worker = { worker, run: workerRun };
  // The worker's connection also starts the tasks: Temporal hands each one's first workflow task
  // to this worker in the start's answer (eager start), a task-queue round trip fewer.
  const app = await buildApp({
    config,
    target,
    workerMetricsUrl: `http://${metricsAddress}/metrics`,
    eagerStartConnection: connection,
  });
  running.app = app;
  const apiUrl = await app.listen({ port: config.port, host: config.host });

  process.stdout.write(
    [
      '',
      `AsyncQueue is running.`,
      `  API:            ${apiUrl}   (try: curl ${apiUrl}/v1/tasks)`,
      `  Temporal:       ${devServer?.address ?? config.temporalAddress}, namespace ${config.temporalNamespace}`,
      `  Temporal UI:    ${devServer?.uiUrl ?? 'see your Temporal cluster'}`,
      `  Signing secret: ${secrets.source}`,
      `  Token secret:   ${tokens.source}`,
      `  Retention:      finished tasks stay readable for ${retention}`,
      `Press Ctrl-C to stop.`,
      '',
    ].join('\n'),
  );

  workerRun.catch((err: unknown) => {
    app.log.fatal({ err }, 'worker stopped unexpectedly');
    process.exit(1);
  });
}

main().catch(exitOnBootFailure);
