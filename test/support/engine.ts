/**
 * Which Temporal the suite runs against: the in-memory dev server (`npm test`) or the
 * production-shaped PostgreSQL cluster (`npm run test:cluster`, ASYNCQUEUE_TEST_ENGINE=cluster).
 * A test that needs the dev server itself (it starts, stops or kills its own) says why and is
 * skipped on the cluster, where `npm test` has already run it.
 */
import type { ClusterOptions } from '../../tools/cluster/cluster.js';

export type TestEngine = 'dev-server' | 'cluster';

export const TEST_ENGINE: TestEngine = process.env.ASYNCQUEUE_TEST_ENGINE === 'cluster' ? 'cluster' : 'dev-server';

/** `describe`/`it` options: skipped with `reason` on the cluster, run on the dev server. */
export function onDevServerOnly(reason: string): { skip?: string } {
  return TEST_ENGINE === 'cluster' ? { skip: `dev server only: ${reason}` } : {};
}

/**
 * `describe`/`it` options: run only on the cluster (`npm run test:cluster`), skipped with `reason`
 * in `npm test` — e.g. a file that starts, kills and restarts a cluster of its own.
 */
export function onClusterOnly(reason: string): { skip?: string } {
  return TEST_ENGINE === 'cluster' ? {} : { skip: `cluster only (npm run test:cluster): ${reason}` };
}

/**
 * How the suite's clusters start (the suite's own, and those a fault test starts, stops and kills
 * itself): in `dataDir`, without the UI, on free ports (kept in the folder for a restart). The
 * suite's lists poll visibility from up to three files at once; Temporal's default for a
 * namespace is 10 visibility requests/s per frontend, the dev server allows 100, and so do these
 * clusters, so both engines throttle alike. A production namespace keeps its own setting
 * (deploy/temporal-dynamicconfig.yaml).
 */
export function testClusterOptions(dataDir: string, log: (line: string) => void = () => undefined): ClusterOptions {
  return {
    dataDir,
    uiPort: null,
    frontendPort: 0,
    postgresPort: 0,
    dynamicConfig: { 'frontend.namespaceRPS.visibility': 100 },
    log,
  };
}
