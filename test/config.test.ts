/** Configuration is validated once at boot, and every error names the variable to fix. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/shared/config.js';
import { ConfigError } from '../src/shared/errors.js';

function rejects(env: Record<string, string>, variable: string): void {
  assert.throws(
    () => loadConfig(env),
    (err: unknown) => err instanceof ConfigError && err.variable === variable && err.message.startsWith(`${variable}:`),
    `${JSON.stringify(env)} should be rejected naming ${variable}`,
  );
}

describe('configuration', () => {
  it('has the CONTRACT defaults', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.temporalAddress, undefined);
    assert.equal(config.temporalNamespace, 'default');
    assert.deepEqual(config.apiKeys, []);
    assert.equal(config.signingSecrets, undefined);
    assert.equal(config.allowPrivateNetworks, false);
    assert.deepEqual(config.allowedDestinations, []);
    assert.equal(config.maxResponseBytes, 1024 * 1024);
    assert.equal(config.worker.workflowThreads, 1);
    assert.equal(config.policy.listStatusDelayMs, 1000);
    assert.equal(loadConfig({ ASYNCQUEUE_LIST_STATUS_DELAY: '0' }).policy.listStatusDelayMs, 0);
    assert.equal(config.worker.temporalCompression, undefined);
  });

  it("reads the worker connection's compression, and refuses one it does not know", () => {
    assert.equal(loadConfig({ ASYNCQUEUE_TEMPORAL_COMPRESSION: 'none' }).worker.temporalCompression, 'none');
    assert.equal(loadConfig({ ASYNCQUEUE_TEMPORAL_COMPRESSION: 'gzip' }).worker.temporalCompression, 'gzip');
    rejects({ ASYNCQUEUE_TEMPORAL_COMPRESSION: 'brotli' }, 'ASYNCQUEUE_TEMPORAL_COMPRESSION');
  });

  it('reads lists, booleans and durations', () => {
    const config = loadConfig({
      ASYNCQUEUE_API_KEYS: ' a-key , b-key ,',
      ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'TRUE',
      ASYNCQUEUE_ALLOWED_DESTINATIONS: 'app.internal, 10.1.0.0/16',
      ASYNCQUEUE_RETRY_INITIAL_INTERVAL: '0.25',
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
    });
    assert.deepEqual(config.apiKeys, ['a-key', 'b-key']);
    assert.equal(config.allowPrivateNetworks, true);
    assert.deepEqual(config.allowedDestinations, ['app.internal', '10.1.0.0/16']);
    assert.equal(config.policy.retryInitialIntervalMs, 250);
    assert.equal(config.temporalAddress, 'temporal.internal:7233');
  });

  it('refuses to run without API keys on a non-loopback HOST', () => {
    rejects({ HOST: '0.0.0.0' }, 'ASYNCQUEUE_API_KEYS');
    rejects({ HOST: '192.168.1.10' }, 'ASYNCQUEUE_API_KEYS');
    assert.equal(loadConfig({ HOST: '0.0.0.0', ASYNCQUEUE_API_KEYS: 'k' }).host, '0.0.0.0');
    for (const host of ['127.0.0.1', 'localhost', '::1']) assert.equal(loadConfig({ HOST: host }).host, host);
  });

  it('names the variable of every malformed value', () => {
    rejects({ PORT: 'http' }, 'PORT');
    rejects({ PORT: '70000' }, 'PORT');
    rejects({ ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'maybe' }, 'ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS');
    rejects({ ASYNCQUEUE_ALLOWED_DESTINATIONS: '10.0.0.0/99' }, 'ASYNCQUEUE_ALLOWED_DESTINATIONS');
    rejects({ ASYNCQUEUE_SIGNING_SECRET: 'not-a-secret' }, 'ASYNCQUEUE_SIGNING_SECRET');
    rejects({ ASYNCQUEUE_SIGNING_SECRET: 'whsec_c2hvcnQ=' }, 'ASYNCQUEUE_SIGNING_SECRET');
    rejects({ ASYNCQUEUE_RETRY_INITIAL_INTERVAL: '-1' }, 'ASYNCQUEUE_RETRY_INITIAL_INTERVAL');
    rejects({ ASYNCQUEUE_RETRY_INITIAL_INTERVAL: '10', ASYNCQUEUE_RETRY_MAX_INTERVAL: '5' }, 'ASYNCQUEUE_RETRY_MAX_INTERVAL');
    rejects({ ASYNCQUEUE_MAX_RESPONSE_BYTES: '99999999' }, 'ASYNCQUEUE_MAX_RESPONSE_BYTES');
    rejects({ ASYNCQUEUE_HEARTBEAT_TIMEOUT: 'soon' }, 'ASYNCQUEUE_HEARTBEAT_TIMEOUT');
    rejects({ ASYNCQUEUE_WORKER_NICE: '20' }, 'ASYNCQUEUE_WORKER_NICE');
    rejects({ ASYNCQUEUE_WORKER_WORKFLOW_THREADS: '0' }, 'ASYNCQUEUE_WORKER_WORKFLOW_THREADS');
    rejects({ ASYNCQUEUE_TASK_TOKEN_SECRET: 'too-short' }, 'ASYNCQUEUE_TASK_TOKEN_SECRET');
    rejects({ ASYNCQUEUE_PROGRESS_INTERVAL: '0' }, 'ASYNCQUEUE_PROGRESS_INTERVAL');
    rejects({ ASYNCQUEUE_LIST_STATUS_DELAY: '61' }, 'ASYNCQUEUE_LIST_STATUS_DELAY');
    rejects({ ASYNCQUEUE_LIST_STATUS_DELAY: '-1' }, 'ASYNCQUEUE_LIST_STATUS_DELAY');
  });

  it("refuses a body limit above Temporal's payload limit, which would make big creates fail", () => {
    rejects({ ASYNCQUEUE_BODY_LIMIT_BYTES: String(2 * 1024 * 1024 + 1) }, 'ASYNCQUEUE_BODY_LIMIT_BYTES');
    rejects({ ASYNCQUEUE_BODY_LIMIT_BYTES: String(8 * 1024 * 1024) }, 'ASYNCQUEUE_BODY_LIMIT_BYTES');
    assert.equal(loadConfig({ ASYNCQUEUE_BODY_LIMIT_BYTES: String(2 * 1024 * 1024) }).bodyLimitBytes, 2 * 1024 * 1024);
  });

  it('reads booleans as true/1/yes and false/0/no in any case, and a blank value as unset', () => {
    for (const yes of ['true', 'TRUE', '1', 'yes', ' Yes ']) {
      assert.equal(loadConfig({ ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: yes }).allowPrivateNetworks, true, yes);
    }
    for (const no of ['false', 'False', '0', 'no', 'NO']) {
      assert.equal(loadConfig({ ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: no }).allowPrivateNetworks, false, no);
    }
    rejects({ ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'constructor' }, 'ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS');
    const blank = loadConfig({ PORT: '  ', ASYNCQUEUE_API_KEYS: ' , ', ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: '' });
    assert.equal(blank.port, 3000);
    assert.deepEqual(blank.apiKeys, []);
    assert.equal(blank.allowPrivateNetworks, false);
  });

  it('reads numbers spelled in digits only, and durations in seconds as milliseconds', () => {
    for (const odd of ['1e3', '0x10', 'Infinity', '-0', '8080.0', '1 2']) rejects({ PORT: odd }, 'PORT');
    for (const odd of ['Infinity', '.5', '5.', '1e1', 'NaN'])
      rejects({ ASYNCQUEUE_HEARTBEAT_TIMEOUT: odd }, 'ASYNCQUEUE_HEARTBEAT_TIMEOUT');
    const config = loadConfig({ PORT: ' 8080 ', ASYNCQUEUE_HEARTBEAT_TIMEOUT: '1.5', ASYNCQUEUE_WORKER_SHUTDOWN_GRACE: '0' });
    assert.equal(config.port, 8080);
    assert.equal(config.policy.heartbeatTimeoutMs, 1500);
    assert.equal(config.worker.shutdownGraceMs, 0);
    assert.equal(config.policy.retryMaximumIntervalMs, 300_000);
    assert.equal(config.logLevel, 'info');
    rejects({ LOG_LEVEL: 'loud' }, 'LOG_LEVEL');
    rejects({ ASYNCQUEUE_WORKER_METRICS_ADDRESS: '9464' }, 'ASYNCQUEUE_WORKER_METRICS_ADDRESS');
    assert.equal(loadConfig({ ASYNCQUEUE_WORKER_METRICS_ADDRESS: '0.0.0.0:9464' }).workerMetricsAddress, '0.0.0.0:9464');
  });

  it('refuses a retry maximum below its initial interval, the default maximum too', () => {
    rejects({ ASYNCQUEUE_RETRY_INITIAL_INTERVAL: '600' }, 'ASYNCQUEUE_RETRY_MAX_INTERVAL');
    rejects(
      { ASYNCQUEUE_WEBHOOK_RETRY_INITIAL_INTERVAL: '2', ASYNCQUEUE_WEBHOOK_RETRY_MAX_INTERVAL: '1' },
      'ASYNCQUEUE_WEBHOOK_RETRY_MAX_INTERVAL',
    );
    const equal = loadConfig({ ASYNCQUEUE_RETRY_INITIAL_INTERVAL: '2', ASYNCQUEUE_RETRY_MAX_INTERVAL: '2' }).policy;
    assert.equal(equal.retryMaximumIntervalMs, equal.retryInitialIntervalMs);
  });

  it('reads lists of secrets, and never echoes a secret into its message', () => {
    const first = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const second = 'whsec_dGhpcy1pcy1hLXNlY29uZC10ZXN0LXNlY3JldC0xMjM0NTY=';
    const config = loadConfig({
      ASYNCQUEUE_SIGNING_SECRET: ` ${first} , ${second} ,`,
      ASYNCQUEUE_TASK_TOKEN_SECRET: 'x'.repeat(32),
    });
    assert.deepEqual(config.signingSecrets, [first, second]);
    assert.deepEqual(config.taskTokenSecrets, ['x'.repeat(32)]);
    for (const [variable, value] of [
      ['ASYNCQUEUE_SIGNING_SECRET', `${first},whsec_leaked-value`],
      ['ASYNCQUEUE_TASK_TOKEN_SECRET', `${'x'.repeat(32)},leaked-value`],
    ] as const) {
      rejects({ [variable]: value }, variable);
      assert.throws(
        () => loadConfig({ [variable]: value }),
        (err: unknown) => err instanceof Error && !err.message.includes('leaked'),
      );
    }
  });

  it('reads only the env it is given: neither process.env nor a .env file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'asyncqueue-config-'));
    const cwd = process.cwd();
    const saved = { HOST: process.env.HOST, ASYNCQUEUE_RATE_LIMIT: process.env.ASYNCQUEUE_RATE_LIMIT };
    Object.assign(process.env, { HOST: '127.0.0.1', ASYNCQUEUE_RATE_LIMIT: '7' });
    try {
      await writeFile(path.join(dir, '.env'), 'PORT=4321\nLOG_LEVEL=debug\n');
      process.chdir(dir);
      const config = loadConfig({});
      assert.equal(config.port, 3000);
      assert.equal(config.logLevel, 'info');
      assert.equal(config.rateLimitPerMinute, 3000);
      assert.equal(loadConfig().rateLimitPerMinute, 7, 'without an env, process.env is the env');
    } finally {
      process.chdir(cwd);
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      await rm(dir, { recursive: true, force: true });
    }
  });
});
