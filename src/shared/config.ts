/**
 * Configuration, read and validated once at boot from the environment. Every problem is a
 * ConfigError naming the variable, so a bad deployment fails at once and says what to fix.
 * `.env.example` documents each variable.
 */
import { isIP } from 'node:net';
import path from 'node:path';
import { ConfigError } from './errors.js';
import { parseAllowedDestinations } from '../../activities/destination-guard.js';
import { TEMPORAL_PAYLOAD_LIMIT_BYTES } from './temporal-limits.js';
import { DEFAULT_TASK_QUEUE, type TaskPolicy } from '../../workflows/task-contract.js';

export interface Config {
  port: number;
  host: string;
  /** Unset: the all-in-one process starts an embedded Temporal dev server. */
  temporalAddress: string | undefined;
  temporalNamespace: string;
  taskQueue: string;
  dataDir: string;
  apiKeys: string[];
  /** Raw secrets; undefined means "generate one and keep it in the data folder". */
  signingSecrets: string[] | undefined;
  /** Secrets task tokens are derived from (the first issues); undefined: generated, as above. */
  taskTokenSecrets: string[] | undefined;
  allowPrivateNetworks: boolean;
  allowedDestinations: string[];
  bodyLimitBytes: number;
  /** At most one progress signal per task per this interval, per API process. */
  progressIntervalMs: number;
  /** Requests per minute per API key on /v1 (0 = no limit). */
  rateLimitPerMinute: number;
  /** Shed load with 503 when the event loop lags more than this (0 = never). */
  maxEventLoopDelayMs: number;
  /** Longest a client may take to send a whole request. */
  requestTimeoutMs: number;
  maxResponseBytes: number;
  policy: TaskPolicy;
  /** Days a finished task stays readable (embedded dev server; a cluster's namespace sets its own). */
  retentionDays: number;
  /** How long a read waits for a query answer before it falls back to what the server stores. */
  queryTimeoutMs: number;
  /** How long any Temporal call made for an API request may take before the API answers 503. */
  temporalRpcTimeoutMs: number;
  worker: {
    maxConcurrentActivities: number;
    maxCachedWorkflows: number;
    shutdownGraceMs: number;
    /** `npm run worker` lowers its CPU priority to this nice value (0: leaves it). */
    nice: number;
  };
  devServer: {
    port: number;
    uiPort: number;
  };
  logLevel: string;
  /**
   * Where a worker process serves Prometheus metrics (`host:port`). Unset: `npm run worker` serves
   * none, and `npm start` serves them through the API's /metrics.
   */
  workerMetricsAddress: string | undefined;
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const read = new EnvReader(env);
  const host = read.string('HOST', '127.0.0.1');
  const apiKeys = read.list('ASYNCQUEUE_API_KEYS');
  if (apiKeys.length === 0 && !isLoopbackHost(host)) {
    throw new ConfigError(
      'ASYNCQUEUE_API_KEYS',
      `required when HOST (${host}) is not a loopback address: without keys anyone who reaches the port could create tasks`,
    );
  }
  const signingSecrets = read.list('ASYNCQUEUE_SIGNING_SECRET');
  for (const secret of signingSecrets) {
    if (!/^whsec_[A-Za-z0-9+/]{32,}={0,2}$/.test(secret)) {
      throw new ConfigError(
        'ASYNCQUEUE_SIGNING_SECRET',
        'each secret must be whsec_ followed by at least 24 base64-encoded random bytes (generate one with: echo "whsec_$(openssl rand -base64 32)")',
      );
    }
  }
  const taskTokenSecrets = read.list('ASYNCQUEUE_TASK_TOKEN_SECRET');
  if (taskTokenSecrets.some((secret) => secret.length < 32)) {
    throw new ConfigError(
      'ASYNCQUEUE_TASK_TOKEN_SECRET',
      'each secret must be at least 32 characters (generate one with: openssl rand -base64 32)',
    );
  }
  const retryInitialIntervalMs = read.seconds('ASYNCQUEUE_RETRY_INITIAL_INTERVAL', 1, { min: 0.01 });
  const webhookRetryInitialIntervalMs = read.seconds('ASYNCQUEUE_WEBHOOK_RETRY_INITIAL_INTERVAL', 5, { min: 0.01 });
  return {
    port: read.integer('PORT', 3000, { min: 0, max: 65535 }),
    host,
    temporalAddress: read.optional('TEMPORAL_ADDRESS'),
    temporalNamespace: read.string('TEMPORAL_NAMESPACE', 'default'),
    taskQueue: read.string('ASYNCQUEUE_TASK_QUEUE', DEFAULT_TASK_QUEUE),
    dataDir: path.resolve(read.string('ASYNCQUEUE_DATA_DIR', 'data')),
    apiKeys,
    signingSecrets: signingSecrets.length > 0 ? signingSecrets : undefined,
    taskTokenSecrets: taskTokenSecrets.length > 0 ? taskTokenSecrets : undefined,
    allowPrivateNetworks: read.boolean('ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS', false),
    allowedDestinations: parseAllowedDestinations(
      read.optional('ASYNCQUEUE_ALLOWED_DESTINATIONS'),
      'ASYNCQUEUE_ALLOWED_DESTINATIONS',
    ),
    // A task's payload travels in its workflow input, which Temporal refuses above its payload limit.
    bodyLimitBytes: read.integer('ASYNCQUEUE_BODY_LIMIT_BYTES', 1024 * 1024, { min: 1024, max: TEMPORAL_PAYLOAD_LIMIT_BYTES }),
    progressIntervalMs: read.seconds('ASYNCQUEUE_PROGRESS_INTERVAL', 5, { min: 0.1, max: 3600 }),
    rateLimitPerMinute: read.integer('ASYNCQUEUE_RATE_LIMIT', 3000, { min: 0 }),
    maxEventLoopDelayMs: read.integer('ASYNCQUEUE_MAX_EVENT_LOOP_DELAY_MS', 1000, { min: 0 }),
    requestTimeoutMs: read.seconds('ASYNCQUEUE_REQUEST_TIMEOUT', 30, { min: 1 }),
    maxResponseBytes: read.integer('ASYNCQUEUE_MAX_RESPONSE_BYTES', 1024 * 1024, { min: 1, max: 1536 * 1024 }),
    policy: {
      retryInitialIntervalMs,
      retryMaximumIntervalMs: read.seconds('ASYNCQUEUE_RETRY_MAX_INTERVAL', 300, {
        min: retryInitialIntervalMs / 1000,
      }),
      // Only how soon a dead worker's calls are retried: cancels reach held calls through the
      // worker's cancel watch. Each held call costs the server a heartbeat every 80 % of this.
      heartbeatTimeoutMs: read.seconds('ASYNCQUEUE_HEARTBEAT_TIMEOUT', 30, { min: 1 }),
      webhookTimeoutMs: read.seconds('ASYNCQUEUE_WEBHOOK_TIMEOUT', 30, { min: 1, max: 3600 }),
      webhookRetryInitialIntervalMs,
      webhookRetryMaximumIntervalMs: read.seconds('ASYNCQUEUE_WEBHOOK_RETRY_MAX_INTERVAL', 3600, {
        min: webhookRetryInitialIntervalMs / 1000,
      }),
      webhookRetryDurationMs: read.seconds('ASYNCQUEUE_WEBHOOK_RETRY_DURATION', 24 * 3600, { min: 1 }),
    },
    retentionDays: read.integer('ASYNCQUEUE_RETENTION_DAYS', 7, { min: 1, max: 3650 }),
    queryTimeoutMs: read.seconds('ASYNCQUEUE_QUERY_TIMEOUT', 3, { min: 0.1 }),
    temporalRpcTimeoutMs: read.seconds('ASYNCQUEUE_TEMPORAL_RPC_TIMEOUT', 10, { min: 0.1 }),
    worker: {
      maxConcurrentActivities: read.integer('ASYNCQUEUE_WORKER_MAX_CONCURRENT_CALLS', 2000, { min: 1 }),
      maxCachedWorkflows: read.integer('ASYNCQUEUE_WORKER_MAX_CACHED_WORKFLOWS', 5000, { min: 0 }),
      shutdownGraceMs: read.seconds('ASYNCQUEUE_WORKER_SHUTDOWN_GRACE', 30, { min: 0 }),
      nice: read.integer('ASYNCQUEUE_WORKER_NICE', 0, { min: 0, max: 19 }),
    },
    devServer: {
      port: read.integer('ASYNCQUEUE_DEV_SERVER_PORT', 7233, { min: 0, max: 65535 }),
      uiPort: read.integer('ASYNCQUEUE_DEV_SERVER_UI_PORT', 8233, { min: 0, max: 65535 }),
    },
    logLevel: read.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    workerMetricsAddress: readMetricsAddress(read.optional('ASYNCQUEUE_WORKER_METRICS_ADDRESS')),
  };
}

function readMetricsAddress(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[^\s:]+:\d{1,5}$/.test(value)) {
    throw new ConfigError('ASYNCQUEUE_WORKER_METRICS_ADDRESS', `expected host:port, got "${value}"`);
  }
  return value;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

class EnvReader {
  constructor(private readonly env: Env) {}

  optional(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  }

  string(name: string, fallback: string): string {
    return this.optional(name) ?? fallback;
  }

  oneOf(name: string, allowed: readonly string[], fallback: string): string {
    const value = this.optional(name) ?? fallback;
    if (!allowed.includes(value)) throw new ConfigError(name, `expected one of ${allowed.join(', ')}, got "${value}"`);
    return value;
  }

  list(name: string): string[] {
    const value = this.optional(name);
    if (value === undefined) return [];
    return value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.optional(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (['true', '1', 'yes'].includes(value)) return true;
    if (['false', '0', 'no'].includes(value)) return false;
    throw new ConfigError(name, `expected true or false, got "${value}"`);
  }

  integer(name: string, fallback: number, range: { min: number; max?: number }): number {
    const value = this.optional(name);
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value)) throw new ConfigError(name, `expected a whole number, got "${value}"`);
    return this.inRange(name, Number(value), range, '');
  }

  /** A duration in seconds (fractions allowed, for tests), returned in milliseconds. */
  seconds(name: string, fallback: number, range: { min: number; max?: number }): number {
    const value = this.optional(name);
    if (value === undefined) return Math.round(fallback * 1000);
    if (!/^\d+(\.\d+)?$/.test(value)) throw new ConfigError(name, `expected a number of seconds, got "${value}"`);
    return Math.round(this.inRange(name, Number(value), range, ' s') * 1000);
  }

  private inRange(name: string, value: number, range: { min: number; max?: number }, unit: string): number {
    if (value < range.min) throw new ConfigError(name, `must be at least ${range.min}${unit}, got ${value}`);
    if (range.max !== undefined && value > range.max) {
      throw new ConfigError(name, `must be at most ${range.max}${unit}, got ${value}`);
    }
    return value;
  }
}
