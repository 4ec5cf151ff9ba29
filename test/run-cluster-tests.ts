/**
 * `npm run test:cluster`: the whole suite against the production engine — a fresh Temporal cluster
 * on PostgreSQL (tools/cluster: one process per service, 8 history shards) in a temporary data
 * folder, never `npm run cluster`'s — then stops it. Files run as in `npm test` (run-tests.ts),
 * with ASYNCQUEUE_TEST_ENGINE=cluster: tests that need a dev server of their own skip themselves
 * (test/support/engine.ts). Pass file names to run just those. The cluster's logs are kept when a
 * test fails, and their folder printed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCluster, type Cluster } from '../tools/cluster/cluster.js';
import { testClusterOptions } from './support/engine.js';
import { runTestFiles, testFiles } from './support/test-runner.js';

function engine(cluster: Cluster): string {
  return (
    `Temporal ${cluster.serverVersion} on ${cluster.postgresVersion}, ${cluster.historyShards} history shards, ` +
    `${cluster.services.join(', ')} as separate processes`
  );
}

async function main(): Promise<number> {
  const files = await testFiles(process.argv.slice(2));

  const dataDir = await mkdtemp(path.join(tmpdir(), 'asyncqueue-test-cluster-'));
  process.stdout.write(`Starting a Temporal cluster on PostgreSQL for the tests (data in ${dataDir})…\n`);
  const started = Date.now();
  const cluster = await startCluster(testClusterOptions(dataDir, (line) => process.stdout.write(`  ${line}\n`))).catch(
    async (err: unknown) => {
      process.stderr.write(`the cluster did not start; its logs are in ${path.join(dataDir, 'logs')}\n`);
      throw err;
    },
  );
  process.stdout.write(`Cluster at ${cluster.address} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${engine(cluster)}\n`);

  let code = 1;
  try {
    code = await runTestFiles(files, { ASYNCQUEUE_TEST_TEMPORAL_ADDRESS: cluster.address, ASYNCQUEUE_TEST_ENGINE: 'cluster' });
    return code;
  } finally {
    const failed = await Promise.race([cluster.failed, Promise.resolve(undefined)]);
    await cluster.stop();
    process.stdout.write(`The suite ran on the production engine: ${engine(cluster)}.\n`);
    if (failed !== undefined) process.stderr.write(`During the run: ${failed.message}\n`);
    if (code === 0 && failed === undefined) await rm(dataDir, { recursive: true, force: true });
    else process.stdout.write(`Cluster logs kept in ${cluster.logDir}\n`);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
