/**
 * Configuration, read and validated once at boot from the environment: env-schema checks every
 * variable against one TypeBox schema (types, defaults, ranges), and loadConfig adds the checks
 * that span variables. Every problem is a ConfigError naming the variable, so a bad deployment
 * fails at once and says what to fix. `.env.example` documents each variable.
 */
import { isIP } from 'node:net';
import path from 'node:path';
import type { ErrorObject } from 'ajv';
import envSchema from 'env-schema';
import { Type, type Static } from 'typebox';
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
  /** Long polls for `?wait` (one per waited-for task) this API process runs at once. */
  maxWaitPolls: number;
  worker: {
    maxConcurrentActivities: number;
    /** Staged flow-controlled attempts (parked, or calling once handed a slot) at once, apart from the calls' slots. */
    maxStagedAttempts: number;
    maxCachedWorkflows: number;
    /** Threads running workflow code (the SDK's workflowThreadPoolSize); each workflow stays on one. */
    workflowThreads: number;
    shutdownGraceMs: number;
    /** `npm run worker` lowers its CPU priority to this nice value (0: leaves it). */
    nice: number;
    /** gRPC compression of the worker's connection; undefined: chosen by where Temporal is. */
    temporalCompression?: GrpcCompression;
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

type Range = { minimum: number; maximum?: number };

// What a malformed value was expected to be: the schemas' descriptions, and the messages' words.
const WHOLE_NUMBER = 'a whole number';
const SECONDS = 'a number of seconds';

/**
 * Digits only, then the range: ajv's coercion alone would also read `1e3`, `0x10` or `Infinity`
 * as numbers (and let `Infinity` past a maximum).
 */
const wholeNumber = (fallback: number, range: Range) =>
  Type.Unsafe<number>({
    description: WHOLE_NUMBER,
    default: fallback,
    allOf: [Type.String({ pattern: '^\\d+$' }), Type.Integer(range)],
  });

/** A duration in seconds (fractions allowed, for tests); loadConfig turns it into milliseconds. */
const seconds = (fallback: number, range: Range) =>
  Type.Unsafe<number>({
    description: SECONDS,
    default: fallback,
    allOf: [Type.String({ pattern: '^\\d+(\\.\\d+)?$' }), Type.Number(range)],
  });

const flag = (fallback: boolean) => Type.Boolean({ description: 'true or false', default: fallback });

/**
 * A comma-separated list, split by env-schema's `separator` keyword after `pattern` has checked
 * the whole of it. `writeOnly` marks secrets: their messages never echo the value.
 */
const list = (options: { description?: string; pattern?: string; writeOnly?: boolean } = {}) =>
  Type.Optional(Type.Unsafe<string[]>({ type: 'string', separator: ',', ...options }));

const optional = (options: { description?: string; pattern?: string } = {}) => Type.Optional(Type.String(options));
const text = (fallback: string) => Type.String({ default: fallback });

const SIGNING_SECRET = 'whsec_[A-Za-z0-9+/]{32,}={0,2}';
const TASK_TOKEN_SECRET = '[^,]{32,}';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const GRPC_COMPRESSIONS = ['gzip', 'none'] as const;
export type GrpcCompression = (typeof GRPC_COMPRESSIONS)[number];

/** Every variable AsyncQueue reads, as `.env.example` documents them. */
const ENV_SCHEMA = Type.Object({
  PORT: wholeNumber(3000, { minimum: 0, maximum: 65535 }),
  HOST: text('127.0.0.1'),
  TEMPORAL_ADDRESS: optional(),
  TEMPORAL_NAMESPACE: text('default'),
  ASYNCQUEUE_TASK_QUEUE: text(DEFAULT_TASK_QUEUE),
  ASYNCQUEUE_DATA_DIR: text('data'),
  ASYNCQUEUE_API_KEYS: list(),
  ASYNCQUEUE_SIGNING_SECRET: list({
    description:
      'whsec_ followed by at least 24 base64-encoded random bytes, for each secret (generate one with: echo "whsec_$(openssl rand -base64 32)")',
    pattern: `^${SIGNING_SECRET}(?:,${SIGNING_SECRET})*$`,
    writeOnly: true,
  }),
  ASYNCQUEUE_TASK_TOKEN_SECRET: list({
    description: 'at least 32 characters, for each secret (generate one with: openssl rand -base64 32)',
    pattern: `^${TASK_TOKEN_SECRET}(?:,${TASK_TOKEN_SECRET})*$`,
    writeOnly: true,
  }),
  ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: flag(false),
  // A string: parseAllowedDestinations reads the entries, and names an empty or malformed one.
  ASYNCQUEUE_ALLOWED_DESTINATIONS: optional(),
  // A task's payload travels in its workflow input, which Temporal refuses above its payload limit.
  ASYNCQUEUE_BODY_LIMIT_BYTES: wholeNumber(1024 * 1024, { minimum: 1024, maximum: TEMPORAL_PAYLOAD_LIMIT_BYTES }),
  ASYNCQUEUE_PROGRESS_INTERVAL: seconds(5, { minimum: 0.1, maximum: 3600 }),
  ASYNCQUEUE_RATE_LIMIT: wholeNumber(3000, { minimum: 0 }),
  ASYNCQUEUE_MAX_EVENT_LOOP_DELAY_MS: wholeNumber(1000, { minimum: 0 }),
  ASYNCQUEUE_REQUEST_TIMEOUT: seconds(30, { minimum: 1 }),
  ASYNCQUEUE_MAX_RESPONSE_BYTES: wholeNumber(1024 * 1024, { minimum: 1, maximum: 1536 * 1024 }),
  ASYNCQUEUE_RETRY_INITIAL_INTERVAL: seconds(1, { minimum: 0.01 }),
  // At least the initial interval: checked in loadConfig, which knows both.
  ASYNCQUEUE_RETRY_MAX_INTERVAL: seconds(300, { minimum: 0.01 }),
  // Only how soon a dead worker's calls are retried: cancels reach held calls through the
  // holding worker's abortHeldCall (activities/held-calls.ts). Each held call costs the server a heartbeat every 80 % of this.
  ASYNCQUEUE_HEARTBEAT_TIMEOUT: seconds(30, { minimum: 1 }),
  ASYNCQUEUE_WEBHOOK_TIMEOUT: seconds(30, { minimum: 1, maximum: 3600 }),
  ASYNCQUEUE_WEBHOOK_RETRY_INITIAL_INTERVAL: seconds(5, { minimum: 0.01 }),
  ASYNCQUEUE_WEBHOOK_RETRY_MAX_INTERVAL: seconds(3600, { minimum: 0.01 }),
  ASYNCQUEUE_WEBHOOK_RETRY_DURATION: seconds(24 * 3600, { minimum: 1 }),
  // How long lists may lag a task's end while its webhook goes out (TaskPolicy.listStatusDelayMs).
  ASYNCQUEUE_LIST_STATUS_DELAY: seconds(1, { minimum: 0, maximum: 60 }),
  ASYNCQUEUE_RETENTION_DAYS: wholeNumber(7, { minimum: 1, maximum: 3650 }),
  ASYNCQUEUE_QUERY_TIMEOUT: seconds(3, { minimum: 0.1 }),
  ASYNCQUEUE_TEMPORAL_RPC_TIMEOUT: seconds(10, { minimum: 0.1 }),
  // Temporal's frontend admits 1200 concurrent long polls per namespace and method by default
  // (frontend.namespaceCount): the sum over the API processes behind one frontend stays below it.
  ASYNCQUEUE_MAX_WAIT_POLLS: wholeNumber(500, { minimum: 1, maximum: 100_000 }),
  ASYNCQUEUE_WORKER_MAX_CONCURRENT_CALLS: wholeNumber(2000, { minimum: 1 }),
  // Staged flow-controlled attempts parked in (or calling from) one worker process, in a pool of their own.
  ASYNCQUEUE_WORKER_MAX_STAGED_ATTEMPTS: wholeNumber(200, { minimum: 1 }),
  ASYNCQUEUE_WORKER_MAX_CACHED_WORKFLOWS: wholeNumber(5000, { minimum: 0 }),
  ASYNCQUEUE_WORKER_WORKFLOW_THREADS: wholeNumber(1, { minimum: 1, maximum: 64 }),
  ASYNCQUEUE_WORKER_SHUTDOWN_GRACE: seconds(30, { minimum: 0 }),
  ASYNCQUEUE_WORKER_NICE: wholeNumber(0, { minimum: 0, maximum: 19 }),
  // Unset: the worker's connection compresses only when Temporal is not on this machine
  // (temporal-connection.ts, workerCompression).
  ASYNCQUEUE_TEMPORAL_COMPRESSION: Type.Optional(Type.Enum(GRPC_COMPRESSIONS)),
  ASYNCQUEUE_DEV_SERVER_PORT: wholeNumber(7233, { minimum: 0, maximum: 65535 }),
  ASYNCQUEUE_DEV_SERVER_UI_PORT: wholeNumber(8233, { minimum: 0, maximum: 65535 }),
  LOG_LEVEL: Type.Enum(LOG_LEVELS, { default: 'info' }),
  ASYNCQUEUE_WORKER_METRICS_ADDRESS: optional({ description: 'host:port', pattern: '^[^\\s:]+:\\d{1,5}$' }),
});

type EnvVariables = Static<typeof ENV_SCHEMA>;
type NumericVariable = { [Name in keyof EnvVariables]-?: EnvVariables[Name] extends number ? Name : never }[keyof EnvVariables];

export function loadConfig(env: Env = process.env): Config {
  const vars = readEnv(env);
  const ms = (value: number) => Math.round(value * 1000);
  const apiKeys = vars.ASYNCQUEUE_API_KEYS ?? [];
  if (apiKeys.length === 0 && !isLoopbackHost(vars.HOST)) {
    throw new ConfigError(
      'ASYNCQUEUE_API_KEYS',
      `required when HOST (${vars.HOST}) is not a loopback address: without keys anyone who reaches the port could create tasks`,
    );
  }
  atLeast(vars, 'ASYNCQUEUE_RETRY_MAX_INTERVAL', 'ASYNCQUEUE_RETRY_INITIAL_INTERVAL');
  atLeast(vars, 'ASYNCQUEUE_WEBHOOK_RETRY_MAX_INTERVAL', 'ASYNCQUEUE_WEBHOOK_RETRY_INITIAL_INTERVAL');
  const signingSecrets = vars.ASYNCQUEUE_SIGNING_SECRET ?? [];
  const taskTokenSecrets = vars.ASYNCQUEUE_TASK_TOKEN_SECRET ?? [];
  return {
    port: vars.PORT,
    host: vars.HOST,
    temporalAddress: vars.TEMPORAL_ADDRESS,
    temporalNamespace: vars.TEMPORAL_NAMESPACE,
    taskQueue: vars.ASYNCQUEUE_TASK_QUEUE,
    dataDir: path.resolve(vars.ASYNCQUEUE_DATA_DIR),
    apiKeys,
    signingSecrets: signingSecrets.length > 0 ? signingSecrets : undefined,
    taskTokenSecrets: taskTokenSecrets.length > 0 ? taskTokenSecrets : undefined,
    allowPrivateNetworks: vars.ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS,
    allowedDestinations: parseAllowedDestinations(vars.ASYNCQUEUE_ALLOWED_DESTINATIONS, 'ASYNCQUEUE_ALLOWED_DESTINATIONS'),
    bodyLimitBytes: vars.ASYNCQUEUE_BODY_LIMIT_BYTES,
    progressIntervalMs: ms(vars.ASYNCQUEUE_PROGRESS_INTERVAL),
    rateLimitPerMinute: vars.ASYNCQUEUE_RATE_LIMIT,
    maxEventLoopDelayMs: vars.ASYNCQUEUE_MAX_EVENT_LOOP_DELAY_MS,
    requestTimeoutMs: ms(vars.ASYNCQUEUE_REQUEST_TIMEOUT),
    maxResponseBytes: vars.ASYNCQUEUE_MAX_RESPONSE_BYTES,
    policy: {
      retryInitialIntervalMs: ms(vars.ASYNCQUEUE_RETRY_INITIAL_INTERVAL),
      retryMaximumIntervalMs: ms(vars.ASYNCQUEUE_RETRY_MAX_INTERVAL),
      heartbeatTimeoutMs: ms(vars.ASYNCQUEUE_HEARTBEAT_TIMEOUT),
      webhookTimeoutMs: ms(vars.ASYNCQUEUE_WEBHOOK_TIMEOUT),
      webhookRetryInitialIntervalMs: ms(vars.ASYNCQUEUE_WEBHOOK_RETRY_INITIAL_INTERVAL),
      webhookRetryMaximumIntervalMs: ms(vars.ASYNCQUEUE_WEBHOOK_RETRY_MAX_INTERVAL),
      webhookRetryDurationMs: ms(vars.ASYNCQUEUE_WEBHOOK_RETRY_DURATION),
      listStatusDelayMs: ms(vars.ASYNCQUEUE_LIST_STATUS_DELAY),
    },
    retentionDays: vars.ASYNCQUEUE_RETENTION_DAYS,
    queryTimeoutMs: ms(vars.ASYNCQUEUE_QUERY_TIMEOUT),
    temporalRpcTimeoutMs: ms(vars.ASYNCQUEUE_TEMPORAL_RPC_TIMEOUT),
    maxWaitPolls: vars.ASYNCQUEUE_MAX_WAIT_POLLS,
    worker: {
      maxConcurrentActivities: vars.ASYNCQUEUE_WORKER_MAX_CONCURRENT_CALLS,
      maxStagedAttempts: vars.ASYNCQUEUE_WORKER_MAX_STAGED_ATTEMPTS,
      maxCachedWorkflows: vars.ASYNCQUEUE_WORKER_MAX_CACHED_WORKFLOWS,
      workflowThreads: vars.ASYNCQUEUE_WORKER_WORKFLOW_THREADS,
      shutdownGraceMs: ms(vars.ASYNCQUEUE_WORKER_SHUTDOWN_GRACE),
      nice: vars.ASYNCQUEUE_WORKER_NICE,
      temporalCompression: vars.ASYNCQUEUE_TEMPORAL_COMPRESSION,
    },
    devServer: {
      port: vars.ASYNCQUEUE_DEV_SERVER_PORT,
      uiPort: vars.ASYNCQUEUE_DEV_SERVER_UI_PORT,
    },
    logLevel: vars.LOG_LEVEL,
    workerMetricsAddress: vars.ASYNCQUEUE_WORKER_METRICS_ADDRESS,
  };
}

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** Validates `env` against ENV_SCHEMA: only `env` (never process.env besides, nor a .env file). */
function readEnv(env: Env): EnvVariables {
  const data = spelledForSchema(env);
  try {
    return envSchema<EnvVariables>({ schema: ENV_SCHEMA, data, env: false, dotenv: false });
  } catch (err) {
    const errors = (err as { errors?: ErrorObject[] }).errors;
    if (errors === undefined || errors[0] === undefined) throw err;
    throw toConfigError(errors[0], data);
  }
}

const BOOLEAN_SPELLINGS = new Map([
  ['true', 'true'],
  ['1', 'true'],
  ['yes', 'true'],
  ['false', 'false'],
  ['0', 'false'],
  ['no', 'false'],
]);

/**
 * The spellings env-schema does not read itself: blanks around a value (or a list item), a blank
 * value meaning unset, and booleans in any case or as 1/0 and yes/no (ajv coerces only "true" and
 * "false").
 */
function spelledForSchema(env: Env): Record<string, string> {
  const data: Record<string, string> = {};
  for (const name of Object.keys(ENV_SCHEMA.properties)) {
    const schema = keywords(name);
    let value = env[name]?.trim();
    if (value !== undefined && schema.separator !== undefined) {
      value = value
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '')
        .join(',');
    } else if (value !== undefined && schema.type === 'boolean') {
      value = BOOLEAN_SPELLINGS.get(value.toLowerCase()) ?? value;
    }
    if (value !== undefined && value !== '') data[name] = value;
  }
  return data;
}

/** The first problem ajv found, as a ConfigError naming its variable. */
function toConfigError(error: ErrorObject, data: Record<string, string>): ConfigError {
  const name = error.instancePath.slice(1) || String(error.params.missingProperty);
  const schema = keywords(name);
  const value = data[name];
  const unit = schema.description === SECONDS ? ' s' : '';
  switch (error.keyword) {
    case 'minimum':
      return new ConfigError(name, `must be at least ${String(error.params.limit)}${unit}, got ${Number(value)}`);
    case 'maximum':
      return new ConfigError(name, `must be at most ${String(error.params.limit)}${unit}, got ${Number(value)}`);
    case 'enum':
      return new ConfigError(name, `expected one of ${(error.params.allowedValues as string[]).join(', ')}, got "${value}"`);
    case 'required':
      return new ConfigError(name, 'is required');
    default:
      if (schema.writeOnly === true) return new ConfigError(name, `expected ${schema.description}`);
      return new ConfigError(name, `expected ${schema.description ?? error.message}, got "${value}"`);
  }
}

/** The keywords of a variable's schema that loadConfig reads back. */
interface Keywords {
  type?: string;
  separator?: string;
  description?: string;
  writeOnly?: boolean;
}

function keywords(name: string): Keywords {
  return (ENV_SCHEMA.properties as Record<string, Keywords | undefined>)[name] ?? {};
}

/** A maximum interval below its initial one would shrink the backoff. */
function atLeast(vars: EnvVariables, name: NumericVariable, floorName: NumericVariable): void {
  const value = vars[name];
  const floor = vars[floorName];
  if (value < floor) throw new ConfigError(name, `must be at least ${floor} s (${floorName}), got ${value}`);
}
