/**
 * The environment the benchmark gives AsyncQueue's API and worker processes, and the settings the
 * report states. Limits that would cut the measurement short (rate limit, load shedding, too few
 * call slots for the held-call runs) are lifted; the rest are the product's defaults.
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_POLICY, type BenchOptions } from './options.js';
import { CLK_TCK } from './process-sampler.js';
import { workerCompression } from '../../src/shared/temporal-connection.js';

export function asyncQueueEnv(options: BenchOptions, address: string, runId: string, dataDir: string): Record<string, string> {
  const maxHeld = Math.max(0, ...options.concurrency.map((c) => c.n));
  return {
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: 'default',
    ASYNCQUEUE_TASK_QUEUE: `bench-${runId}`,
    ASYNCQUEUE_DATA_DIR: dataDir,
    ASYNCQUEUE_SIGNING_SECRET: `whsec_${randomBytes(32).toString('base64')}`,
    ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'true',
    ASYNCQUEUE_RATE_LIMIT: '0',
    ASYNCQUEUE_MAX_EVENT_LOOP_DELAY_MS: '0',
    ASYNCQUEUE_WORKER_MAX_CONCURRENT_CALLS: String(options.workerSlots ?? Math.max(2000, maxHeld + 100)),
    ASYNCQUEUE_WORKER_SHUTDOWN_GRACE: '1',
    ASYNCQUEUE_WORKER_NICE: String(options.workerNice),
    ASYNCQUEUE_WORKER_WORKFLOW_THREADS: String(options.workflowThreads),
    ASYNCQUEUE_HEARTBEAT_TIMEOUT: String(options.heartbeatTimeoutMs / 1000),
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
  };
}

export function reportedSettings(options: BenchOptions, env: Record<string, string>): Record<string, string | number> {
  return {
    ASYNCQUEUE_WORKER_MAX_CONCURRENT_CALLS: env.ASYNCQUEUE_WORKER_MAX_CONCURRENT_CALLS ?? '',
    ASYNCQUEUE_HEARTBEAT_TIMEOUT: `${options.heartbeatTimeoutMs / 1000} s${options.heartbeatTimeoutMs === DEFAULT_POLICY.heartbeatTimeoutMs ? ' (default)' : ''}`,
    ASYNCQUEUE_RATE_LIMIT: 0,
    ASYNCQUEUE_MAX_EVENT_LOOP_DELAY_MS: 0,
    ASYNCQUEUE_WORKER_NICE: options.workerNice,
    ASYNCQUEUE_WORKER_WORKFLOW_THREADS: options.workflowThreads,
    // Both targets' worker connections: chosen by the engine's address (temporal-connection.ts).
    'worker gRPC compression': workerCompression(undefined, env.TEMPORAL_ADDRESS),
    'task retries/timeout': '3 / 30 s',
    'API processes': options.apis,
    'worker processes': options.workers,
    'callback answers after': `${options.callbackMs} ms`,
    CLK_TCK: CLK_TCK,
  };
}
