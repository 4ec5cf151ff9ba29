/**
 * `npm run cluster`: a production-shaped Temporal cluster on this machine (PostgreSQL, one process
 * per Temporal service, the Web UI), in the foreground until Ctrl-C. Its data stays in
 * data/cluster/, so the next `npm run cluster` comes back with every task.
 *
 * Environment (all optional):
 *   ASYNCQUEUE_CLUSTER_DATA_DIR       data folder (data/cluster in the repository)
 *   ASYNCQUEUE_CLUSTER_PORT           frontend gRPC port (7233; 0 = any free one)
 *   ASYNCQUEUE_CLUSTER_UI_PORT        Web UI port (8233; 0 = any free one; off = no UI)
 *   ASYNCQUEUE_CLUSTER_POSTGRES_PORT  PostgreSQL port (the previous start's, else any free one)
 *   ASYNCQUEUE_CLUSTER_SHARDS         history shards (8), fixed when the data folder is created
 *   ASYNCQUEUE_CLUSTER_LOG_LEVEL      the Temporal services' log level (info), in their log files
 *   TEMPORAL_NAMESPACE                namespace (default)
 *   ASYNCQUEUE_RETENTION_DAYS         retention of the namespace when this creates it (7)
 */
import { fileURLToPath } from 'node:url';
import { describeCluster, startCluster, type Cluster, type ClusterOptions } from './cluster.js';

const DEFAULT_DATA_DIR = fileURLToPath(new URL('../../../data/cluster', import.meta.url));

class OptionError extends Error {}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OptionError(`${name}: expected a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function readOptions(env: NodeJS.ProcessEnv): ClusterOptions {
  const ui = env.ASYNCQUEUE_CLUSTER_UI_PORT;
  return {
    dataDir: env.ASYNCQUEUE_CLUSTER_DATA_DIR || DEFAULT_DATA_DIR,
    frontendPort: integer(env, 'ASYNCQUEUE_CLUSTER_PORT', 7233, 0, 65535),
    uiPort: ui === 'off' ? null : integer(env, 'ASYNCQUEUE_CLUSTER_UI_PORT', 8233, 0, 65535),
    postgresPort: integer(env, 'ASYNCQUEUE_CLUSTER_POSTGRES_PORT', 0, 0, 65535),
    ...(env.ASYNCQUEUE_CLUSTER_SHARDS ? { historyShards: integer(env, 'ASYNCQUEUE_CLUSTER_SHARDS', 8, 1, 16384) } : {}),
    logLevel: env.ASYNCQUEUE_CLUSTER_LOG_LEVEL || 'info',
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    retentionDays: integer(env, 'ASYNCQUEUE_RETENTION_DAYS', 7, 1, 3650),
  };
}

async function main(): Promise<number> {
  const options = readOptions(process.env);
  // Installed before the start: a Ctrl-C during it stops what has started, instead of leaving the
  // child processes (in process groups of their own) running.
  const interrupt = new AbortController();
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(name, () => {
        interrupt.abort();
        resolve(name);
      });
    }
  });
  const started = Date.now();
  let cluster: Cluster;
  try {
    cluster = await startCluster({ ...options, signal: interrupt.signal });
  } catch (err) {
    if (!interrupt.signal.aborted) throw err;
    process.stderr.write('cluster: interrupted; what had started is stopped again\n');
    return 130;
  }
  process.stdout.write(
    `\n${describeCluster(cluster)}\n\n` +
      `Ready in ${((Date.now() - started) / 1000).toFixed(1)} s. Run AsyncQueue against it:\n` +
      `  TEMPORAL_ADDRESS=${cluster.address} TEMPORAL_NAMESPACE=${cluster.namespace} npm run api\n` +
      `  TEMPORAL_ADDRESS=${cluster.address} TEMPORAL_NAMESPACE=${cluster.namespace} npm run worker\n` +
      'Ctrl-C stops the cluster; its data stays for the next start.\n',
  );

  const outcome = await Promise.race([signalled, cluster.failed]);
  if (typeof outcome === 'string') {
    process.stdout.write('Stopping the UI, the Temporal services, then PostgreSQL…\n');
  } else {
    process.stderr.write(`\ncluster: ${outcome.message}\nstopping the rest…\n`);
  }
  await cluster.stop();
  process.stdout.write('Cluster stopped.\n');
  return typeof outcome === 'string' ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`cluster: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
