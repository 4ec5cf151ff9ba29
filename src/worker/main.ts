/** `npm run worker`: one worker process; run as many as the load needs. */
import { lowerProcessPriority } from './process-priority.js';
import { exitOnBootFailure, loadConfigOrExit, onShutdownSignal } from '../shared/process-lifecycle.js';
import { ensureSearchAttributes } from '../shared/search-attributes.js';
import { loadSigningSecrets, loadTaskTokenSecrets } from '../shared/server-secrets.js';
import { lazyClientConnection } from '../shared/temporal-connection.js';
import { connectWorkerConnection } from './connection.js';
import { createTaskWorker, stopWorker } from './task-worker.js';
import { installWorkerRuntime } from './runtime.js';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  // Before the SDK's runtime starts its threads, so that they inherit it.
  lowerProcessPriority(config.worker.nice);
  installWorkerRuntime({ logLevel: config.logLevel, metricsAddress: config.workerMetricsAddress });
  if (config.temporalAddress === undefined) {
    throw new Error('TEMPORAL_ADDRESS is required for `npm run worker` (use `npm start` for the embedded dev server)');
  }
  const client = lazyClientConnection({});
  try {
    await ensureSearchAttributes(client, config.temporalNamespace);
  } finally {
    await client.close();
  }
  const secrets = await loadSigningSecrets(config.signingSecrets, config.dataDir);
  if (config.signingSecrets === undefined) {
    process.stderr.write(
      `asyncqueue: ASYNCQUEUE_SIGNING_SECRET is unset; using the secret in ${secrets.source}. ` +
        'Every worker must sign with the same secret: set ASYNCQUEUE_SIGNING_SECRET when running more than one.\n',
    );
  }
  const tokens = await loadTaskTokenSecrets(config.taskTokenSecrets, config.dataDir);
  if (config.taskTokenSecrets === undefined) {
    process.stderr.write(
      `asyncqueue: ASYNCQUEUE_TASK_TOKEN_SECRET is unset; using the secret in ${tokens.source}. ` +
        'The API checks the task tokens workers issue: set ASYNCQUEUE_TASK_TOKEN_SECRET to the same value for both ' +
        'unless they share this data folder.\n',
    );
  }
  const connection = await connectWorkerConnection({}, config.worker.temporalCompression);
  const worker = await createTaskWorker({ config, connection, signingKeys: secrets.keys, taskTokens: tokens.keys });
  const run = worker.run();
  onShutdownSignal(async () => {
    // In-flight calls get the configured grace period; what is cut off Temporal retries elsewhere.
    await stopWorker(worker, run);
    await connection.close();
  });
  await run;
}

main().catch(exitOnBootFailure);
