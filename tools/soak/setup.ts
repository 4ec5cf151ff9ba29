/**
 * The soak's system under test and its teardown: a file-backed Temporal dev server (or, with
 * `--cluster`, a Temporal cluster on PostgreSQL of its own), the worker
 * pool, the loopback receiver, and the API in this process (its errors are read from its log), all
 * on short retry schedules so that faults are recovered from in seconds; then one task end to end
 * before the clock starts.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import { loadConfig } from '../../src/shared/config.js';
import { isRecord } from '../shared/json-values.js';
import { teardownStep } from '../shared/teardown.js';
import { sleep } from '../shared/timing.js';
import { apiLogStream, callApi, withRetries } from './api-client.js';
import { isSettled } from './drain.js';
import type { SoakEngine } from './engine.js';
import type { SoakOptions } from './options.js';
import { Receiver } from './receiver.js';
import { log } from './run-log.js';
import { Rng } from './seeded-random.js';
import { requestStop } from './stop-signal.js';
import { readTask } from './task-calls.js';
import type { CreateBody, SoakTask } from './task-mix.js';
import { TemporalCluster } from './temporal-cluster.js';
import { TemporalServer } from './temporal-server.js';
import { Traffic } from './traffic.js';
import { WorkerPool } from './worker-pool.js';

export interface Running {
  options: SoakOptions;
  /** Two streams, so the task mix and the fault timings each replay from `--seed`. */
  rng: Rng;
  faultRng: Rng;
  runId: string;
  baseUrl: string;
  receiver: Receiver;
  traffic: Traffic;
  /** The Temporal engine: the dev server, or with `--cluster` a cluster of the run's own. */
  server: SoakEngine;
  workers: WorkerPool;
  tasks: SoakTask[];
  /** Creates and cancels still in flight. */
  inFlight: Set<Promise<void>>;
}

const SIGNING_SECRET = `whsec_${Buffer.from('asyncqueue-soak-fixed-signing-secret!').toString('base64')}`;

function serviceEnv(temporalAddress: string, taskQueue: string, dataDir: string): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: temporalAddress,
    ASYNCQUEUE_TASK_QUEUE: taskQueue,
    ASYNCQUEUE_DATA_DIR: dataDir,
    ASYNCQUEUE_SIGNING_SECRET: SIGNING_SECRET,
    ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'true',
    // Short schedules, so that faults are recovered from in seconds rather than minutes.
    ASYNCQUEUE_RETRY_INITIAL_INTERVAL: '0.5',
    ASYNCQUEUE_RETRY_MAX_INTERVAL: '5',
    ASYNCQUEUE_HEARTBEAT_TIMEOUT: '3',
    ASYNCQUEUE_WEBHOOK_RETRY_INITIAL_INTERVAL: '0.5',
    ASYNCQUEUE_WEBHOOK_RETRY_MAX_INTERVAL: '5',
    ASYNCQUEUE_WORKER_SHUTDOWN_GRACE: '5',
    ASYNCQUEUE_RATE_LIMIT: '0',
    ASYNCQUEUE_TEMPORAL_RPC_TIMEOUT: '5',
    LOG_LEVEL: 'warn',
  };
}

/** Everything the run started, so Ctrl-C and the end tear down the same way. */
const resources: {
  tmpDir?: string;
  clusterDir?: string;
  /** Set when a cluster run fails: the cluster's folder (with its logs) is kept, not deleted. */
  keepTmpDir?: boolean;
  server?: SoakEngine;
  /** A cluster start in progress: an interrupt aborts it and waits for what it started to stop. */
  engineStart?: { abort: AbortController; settled: Promise<unknown> };
  workers?: WorkerPool;
  app?: FastifyInstance;
  receiver?: Receiver;
} = {};
let cleaning: Promise<void> | undefined;

/** Keeps the run's folder (a cluster's logs) instead of deleting it at the cleanup. */
export function keepRunFolder(): void {
  resources.keepTmpDir = true;
}

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    requestStop();
    const step = async (what: string, action: (() => Promise<unknown>) | undefined): Promise<void> => {
      if (action !== undefined) await teardownStep(log, what, action);
    };
    if (resources.engineStart !== undefined) {
      resources.engineStart.abort.abort();
      await teardownStep(log, 'cluster start', () => resources.engineStart!.settled);
    }
    const { workers, app, receiver, server, tmpDir, clusterDir, keepTmpDir } = resources;
    await step('workers', workers && (() => workers.closeAll()));
    await step('API', app && (() => app.close()));
    await step('receiver', receiver && (() => receiver.close()));
    await step(server instanceof TemporalCluster ? 'Temporal cluster' : 'Temporal dev server', server && (() => server.stop()));
    await step('temp folder', tmpDir === undefined ? undefined : () => rm(tmpDir, { recursive: true, force: true }));
    if (keepTmpDir === true && server?.logDir !== undefined)
      log(`the run failed: cluster data and logs kept in ${clusterDir} (logs: ${server.logDir})`);
    else
      await step('cluster folder', clusterDir === undefined ? undefined : () => rm(clusterDir, { recursive: true, force: true }));
  })();
  return cleaning;
}

export async function setUp(options: SoakOptions): Promise<Running> {
  const runId = randomUUID().slice(0, 8);
  resources.tmpDir = await mkdtemp(path.join(tmpdir(), 'asyncqueue-soak-'));
  log(
    `run ${runId}: seed ${options.seed}, ${options.minutes} min at ${options.rate} tasks/s, ${options.workers} workers; data in ${resources.tmpDir}`,
  );

  let server: SoakEngine;
  if (options.cluster) {
    // A folder of its own, as `npm run test:cluster` uses: PostgreSQL's user must be able to enter
    // it, which it cannot below the run's private (0700) folder.
    const clusterDir = await mkdtemp(path.join(tmpdir(), 'asyncqueue-soak-cluster-'));
    resources.clusterDir = clusterDir;
    const startedAt = Date.now();
    log(`starting a Temporal cluster on PostgreSQL in ${clusterDir}`);
    const abort = new AbortController();
    const starting = TemporalCluster.start(clusterDir, abort.signal);
    resources.engineStart = { abort, settled: starting.catch(() => undefined) };
    server = await starting;
    resources.engineStart = undefined;
    resources.server = server;
    log(
      `${server.description} at ${server.address}, up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (logs ${server.logDir})`,
    );
  } else {
    const dbFile = path.join(resources.tmpDir, 'temporal.db');
    server = await TemporalServer.start(dbFile);
    resources.server = server;
    log(`Temporal dev server at ${server.address} (db ${dbFile})`);
  }

  const env = serviceEnv(server.address, `soak-${runId}`, resources.tmpDir);
  const workers = new WorkerPool(env, options.workers);
  resources.workers = workers;
  workers.start();

  const receiver = await Receiver.start();
  resources.receiver = receiver;
  const traffic = new Traffic(SIGNING_SECRET);
  traffic.install(receiver);

  const config = loadConfig({ ...env, HOST: '127.0.0.1', PORT: '0' });
  const app = await buildApp({
    config,
    target: { embeddedAddress: server.address },
    logger: { level: 'error', stream: apiLogStream },
  });
  resources.app = app;
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  log(`API at ${baseUrl}, receiver at ${receiver.origin}`);

  const run: Running = {
    options,
    rng: new Rng(options.seed),
    faultRng: new Rng(options.seed ^ 0x5eed),
    runId,
    baseUrl,
    receiver,
    traffic,
    server,
    workers,
    tasks: [],
    inFlight: new Set(),
  };
  await waitUntilWorking(run);
  return run;
}

/** One task end to end before the clock starts: workers polling, API and receiver wired up. */
async function waitUntilWorking(run: Running): Promise<void> {
  const probe: CreateBody = {
    callbackUrl: run.receiver.url('/warmup'),
    payload: { marker: 'warmup', kind: 'succeeding' },
    webhookUrl: run.receiver.url('/warmup-hook'),
    retries: 3,
    timeout: 10,
    delay: 0,
  };
  const { answer } = await withRetries(60_000, () => callApi(run.baseUrl, 'POST', '/v1/tasks', '/v1/tasks', probe));
  const id = isRecord(answer.body) && typeof answer.body.id === 'string' ? answer.body.id : undefined;
  if (id === undefined) throw new Error(`warm-up create failed: ${answer.status} ${JSON.stringify(answer.body)}`);
  for (let poll = 0; poll < 240; poll++) {
    const view = await readTask(run.baseUrl, id);
    if (isSettled(view)) {
      log(`warm-up task ${id} ${view?.status}; starting the load`);
      return;
    }
    await sleep(500);
  }
  throw new Error(`warm-up task ${id} did not finish within 120 s: are the workers running?`);
}
