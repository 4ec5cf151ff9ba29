/**
 * A real AsyncQueue for one test file: its own task queue on the shared Temporal dev server, a
 * worker running the bundled workflows, and the API listening on a free loopback port.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOptions } from '../../src/api/app.js';
import { loadConfig, type Config } from '../../src/shared/config.js';
import { DevServer, freePort } from '../../src/dev/dev-server.js';
import type { DestinationGuard } from '../../activities/destination-guard.js';
import { loadSigningSecrets, loadTaskTokenSecrets } from '../../src/shared/server-secrets.js';
import {
  WORKFLOW_BUNDLE_OPTIONS,
  createTaskWorker,
  stopWorker as stopTaskWorker,
  type TaskWorker,
  type TaskWorkerOptions,
} from '../../src/worker/task-worker.js';
import { installWorkerRuntime } from '../../src/worker/runtime.js';
import { connectWorkerConnection } from '../../src/worker/connection.js';
import { eventually } from './eventually.js';

/** A fixed secret, so tests can verify signatures with an independent library. */
export const TEST_SIGNING_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
/** Fixed too, so worker processes a test spawns issue task tokens this file's API accepts. */
export const TEST_TASK_TOKEN_SECRET = 'test-task-token-secret-0123456789abcdef';

/** Short retry and heartbeat settings: time-based behaviour is tested in seconds, not minutes. */
const TEST_ENV: Record<string, string> = {
  PORT: '0',
  LOG_LEVEL: 'warn',
  ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'true',
  ASYNCQUEUE_SIGNING_SECRET: TEST_SIGNING_SECRET,
  ASYNCQUEUE_TASK_TOKEN_SECRET: TEST_TASK_TOKEN_SECRET,
  ASYNCQUEUE_RETRY_INITIAL_INTERVAL: '0.2',
  ASYNCQUEUE_RETRY_MAX_INTERVAL: '1',
  ASYNCQUEUE_HEARTBEAT_TIMEOUT: '2',
  ASYNCQUEUE_WEBHOOK_TIMEOUT: '5',
  ASYNCQUEUE_WEBHOOK_RETRY_INITIAL_INTERVAL: '0.2',
  ASYNCQUEUE_WEBHOOK_RETRY_MAX_INTERVAL: '1',
  ASYNCQUEUE_WORKER_SHUTDOWN_GRACE: '1',
  // Test processes bundle workflows and run workers beside the API, stalling the event loop now
  // and then; load shedding is tested on its own (overload.test.ts) and off elsewhere.
  ASYNCQUEUE_MAX_EVENT_LOOP_DELAY_MS: '0',
};

/** The worker runtime's Prometheus endpoint in this test process (one runtime per process). */
let workerMetricsUrl: string | undefined;
let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
let ownServer: Promise<DevServer> | undefined;

/** The workflows, bundled once per test process exactly as the worker would bundle them. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ ...WORKFLOW_BUNDLE_OPTIONS, logger: new DefaultLogger('WARN') });
  return bundle;
}

/** `npm test` starts one server for the whole run; a file run on its own starts its own. */
export async function temporalAddress(): Promise<string> {
  const shared = process.env.ASYNCQUEUE_TEST_TEMPORAL_ADDRESS;
  if (shared !== undefined && shared !== '') return shared;
  ownServer ??= DevServer.start({ port: 0, uiPort: null, namespace: 'default' });
  return (await ownServer).address;
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface Harness {
  config: Config;
  baseUrl: string;
  app: FastifyInstance;
  client: Client;
  api<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse<T>>;
  /** POST /v1/tasks, asserting 202; the new task's id. */
  createTask(body: Record<string, unknown>, headers?: Record<string, string>): Promise<string>;
  /** GET /v1/tasks/:id, asserting 200; the task's view. */
  task(id: string, headers?: Record<string, string>): Promise<any>;
  /** Polls the task's view until `predicate` holds; that view. */
  waitForTask(id: string, predicate: (task: any) => boolean, what: string, options?: WaitOptions): Promise<any>;
  /** Polls until the task has ended and its webhook, if any, is settled; that view. */
  waitForEnd(id: string, options?: WaitOptions): Promise<any>;
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

export interface WaitOptions {
  timeoutMs?: number;
  headers?: Record<string, string>;
}

/** The task has a final status and its webhook, if it has one, is settled. */
function hasEnded(task: any): boolean {
  return ['succeeded', 'failed', 'cancelled'].includes(task?.status) && task.webhook?.status !== 'pending';
}

export interface HarnessOptions {
  env?: Record<string, string>;
  guard?: DestinationGuard;
  /** Start without a worker (a test starts it when it wants work to happen). */
  withoutWorker?: boolean;
  /** Another Temporal server than the shared one (fault tests kill and restart their own). */
  temporalAddress?: string;
  /** The API's logger (default: none). */
  logger?: AppOptions['logger'];
  /** Interceptors of the worker's own client (its activities' signals). */
  workerClientInterceptors?: TaskWorkerOptions['clientInterceptors'];
  /** Tasks start through the worker's connection with eager start, as `npm start` runs them. */
  eagerStart?: boolean;
}

/**
 * The worker runtime with its Prometheus endpoint on a free port. A free port is only free until
 * someone binds it, and files running beside this one start servers on free ports too (a CI run
 * lost that race once): on "address in use" another port is tried (the runtime is not installed
 * when its exporter fails to start).
 */
async function installRuntimeOnFreePort(): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const metricsAddress = `127.0.0.1:${await freePort()}`;
    try {
      installWorkerRuntime({ logLevel: 'warn', metricsAddress });
      return `http://${metricsAddress}/metrics`;
    } catch (err) {
      if (attempt >= 5 || !/address already in use/i.test(String(err))) throw err;
    }
  }
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  if (workerMetricsUrl === undefined) workerMetricsUrl = await installRuntimeOnFreePort();
  const address = options.temporalAddress ?? (await temporalAddress());
  const dataDir = await mkdtemp(path.join(tmpdir(), 'asyncqueue-test-'));
  const config = loadConfig({
    ...TEST_ENV,
    TEMPORAL_ADDRESS: address,
    ASYNCQUEUE_TASK_QUEUE: `test-${randomUUID()}`,
    ASYNCQUEUE_DATA_DIR: dataDir,
    ...options.env,
  });
  const target = { embeddedAddress: address };
  const secrets = await loadSigningSecrets(config.signingSecrets, config.dataDir);
  const tokens = await loadTaskTokenSecrets(config.taskTokenSecrets, config.dataDir);
  // The worker's connection as `npm run worker` makes it (uncompressed to this loopback server).
  const nativeConnection = await connectWorkerConnection(target, config.worker.temporalCompression);
  const clientConnection = await Connection.connect({ address });
  const client = new Client({ connection: clientConnection, namespace: config.temporalNamespace });

  let worker: TaskWorker | undefined;
  let running: Promise<void> | undefined;
  const startWorker = async (): Promise<void> => {
    if (worker !== undefined) return;
    worker = await createTaskWorker({
      config,
      connection: nativeConnection,
      signingKeys: secrets.keys,
      taskTokens: tokens.keys,
      workflowBundle: await workflowBundle(),
      ...(options.guard !== undefined ? { guard: options.guard } : {}),
      ...(options.workerClientInterceptors !== undefined ? { clientInterceptors: options.workerClientInterceptors } : {}),
    });
    running = worker.run();
  };
  const stopWorker = async (): Promise<void> => {
    if (worker === undefined || running === undefined) return;
    await stopTaskWorker(worker, running);
    worker = undefined;
    running = undefined;
  };
  if (!options.withoutWorker) await startWorker();

  const app = await buildApp({
    config,
    target,
    logger: options.logger ?? false,
    workerMetricsUrl,
    ...(options.guard !== undefined ? { guard: options.guard } : {}),
    ...(options.eagerStart === true ? { eagerStartConnection: nativeConnection } : {}),
  });
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });

  const api: Harness['api'] = async (method, urlPath, body, headers = {}) => {
    const response = await fetch(`${baseUrl}${urlPath}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
  };
  const task: Harness['task'] = async (id, headers) => {
    const response = await api('GET', `/v1/tasks/${id}`, undefined, headers);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    return response.body;
  };

  const waitForTask: Harness['waitForTask'] = async (id, predicate, what, { timeoutMs = 20_000, headers } = {}) =>
    eventually(
      async () => {
        const view = await task(id, headers);
        return predicate(view) ? view : undefined;
      },
      { timeoutMs, what: `task ${id}: ${what}` },
    );

  return {
    config,
    baseUrl,
    app,
    client,
    api,
    async createTask(body, headers) {
      const response = await api('POST', '/v1/tasks', body, headers);
      assert.equal(response.status, 202, JSON.stringify(response.body));
      return response.body.id as string;
    },
    task,
    waitForTask,
    waitForEnd: async (id, options) => waitForTask(id, hasEnded, 'to end', options),
    startWorker,
    stopWorker,
    async close() {
      await app.close();
      await stopWorker();
      await nativeConnection.close();
      await clientConnection.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The process id of the dev server this process started itself; none when the run shares one. */
export async function ownServerPid(): Promise<number | undefined> {
  return ownServer !== undefined ? (await ownServer).pid : undefined;
}

/** Stops the dev server this process started itself, if any (files run outside `npm test`). */
export async function stopOwnServer(): Promise<void> {
  if (ownServer !== undefined) await (await ownServer).stop();
}
