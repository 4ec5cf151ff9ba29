/**
 * `--cluster`: the soak's Temporal is a production-shaped cluster of its own (tools/cluster: the
 * four services as separate processes on PostgreSQL) in a fresh folder, with no UI, stopped at the
 * end. Its faults are the ones a cluster allows: kill -9 of one Temporal service — history and
 * frontend in turn — started again on the same ports and data, and, once, a PostgreSQL restart
 * (fast shutdown, data kept) under the running services.
 */
import { startCluster, type Cluster } from '../cluster/cluster.js';
import { sleep } from '../shared/timing.js';
import type { SoakEngine } from './engine.js';
import { recordFault } from './faults.js';
import { log } from './run-log.js';
import type { Rng } from './seeded-random.js';

/**
 * As `npm run test:cluster`: 100 visibility requests/s per namespace, as the dev server allows,
 * so both engines throttle the soak's list alike (Temporal's default is 10).
 */
const DYNAMIC_CONFIG = { 'frontend.namespaceRPS.visibility': 100 };

/** The faults in order: history and frontend alternate; PostgreSQL is restarted once, third. */
type ClusterFault = 'history' | 'frontend' | 'postgres';
function faultNumber(n: number): ClusterFault {
  if (n === 2) return 'postgres';
  return (n < 2 ? n : n - 1) % 2 === 0 ? 'history' : 'frontend';
}

export class TemporalCluster implements SoakEngine {
  private faultsInjected = 0;

  private constructor(private readonly cluster: Cluster) {
    // A process of the cluster that exits by itself is a finding; kill() exits are not reported.
    void cluster.failed.then((err) => recordFault('cluster-died', err.message.split('\n')[0] ?? err.message));
  }

  static async start(dataDir: string, signal?: AbortSignal): Promise<TemporalCluster> {
    const cluster = await startCluster({
      dataDir,
      signal,
      uiPort: null,
      frontendPort: 0,
      postgresPort: 0,
      dynamicConfig: DYNAMIC_CONFIG,
      log: (line) => log(`cluster: ${line}`),
    });
    return new TemporalCluster(cluster);
  }

  get description(): string {
    const { cluster } = this;
    return `Temporal ${cluster.serverVersion} cluster on ${cluster.postgresVersion}, ${cluster.historyShards} history shards, ${cluster.services.join('/')} as separate processes`;
  }

  get address(): string {
    return this.cluster.address;
  }

  get logDir(): string {
    return this.cluster.logDir;
  }

  /**
   * A cluster part is back in well under a second, so it is hurt more often than the dev server:
   * every ~40–55 s (at most a quarter of the run), the first no later than 20 % into it, so that a
   * 3-minute run kills history and frontend and restarts PostgreSQL.
   */
  firstFaultAfter(rng: Rng, durationMs: number): number {
    return Math.min(rng.between(40_000, 55_000), durationMs * 0.2);
  }

  nextFaultAfter(rng: Rng, durationMs: number): number {
    return Math.min(rng.between(40_000, 55_000), durationMs * 0.25);
  }

  async injectFault(rng: Rng): Promise<void> {
    const target = faultNumber(this.faultsInjected++);
    const downMs = rng.int(1_500, 2_500);
    const stoppedAt = Date.now();
    if (target === 'postgres') {
      const exit = await this.cluster.kill('postgres', 'SIGINT');
      recordFault(
        'postgres-restart',
        `PostgreSQL fast shutdown (SIGINT, exit code ${exit.code}); starting it again in ${downMs} ms`,
      );
    } else {
      const exit = await this.cluster.kill(target, 'SIGKILL');
      recordFault(
        `${target}-kill`,
        `kill -9 temporal ${target} (exit ${exit.signal ?? exit.code}); restarting it in ${downMs} ms`,
      );
    }
    await sleep(downMs);
    const restartingAt = Date.now();
    const name = target === 'postgres' ? 'PostgreSQL' : `temporal ${target}`;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.cluster.restart(target);
        break;
      } catch (err) {
        if (attempt >= 3) throw err;
        log(`${name} restart ${attempt} failed (${(err as Error).message.split('\n')[0]}); retrying`);
        await sleep(2_000);
      }
    }
    log(
      `${name} back after ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s down (restart took ${((Date.now() - restartingAt) / 1000).toFixed(1)} s)`,
    );
  }

  stop(): Promise<void> {
    return this.cluster.stop();
  }
}
