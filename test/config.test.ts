/** Configuration is validated once at boot, and every error names the variable to fix. */
import assert from 'node:assert/strict';
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
    rejects({ ASYNCQUEUE_TASK_TOKEN_SECRET: 'too-short' }, 'ASYNCQUEUE_TASK_TOKEN_SECRET');
    rejects({ ASYNCQUEUE_PROGRESS_INTERVAL: '0' }, 'ASYNCQUEUE_PROGRESS_INTERVAL');
  });

  it("refuses a body limit above Temporal's payload limit, which would make big creates fail", () => {
    rejects({ ASYNCQUEUE_BODY_LIMIT_BYTES: String(2 * 1024 * 1024 + 1) }, 'ASYNCQUEUE_BODY_LIMIT_BYTES');
    rejects({ ASYNCQUEUE_BODY_LIMIT_BYTES: String(8 * 1024 * 1024) }, 'ASYNCQUEUE_BODY_LIMIT_BYTES');
    assert.equal(loadConfig({ ASYNCQUEUE_BODY_LIMIT_BYTES: String(2 * 1024 * 1024) }).bodyLimitBytes, 2 * 1024 * 1024);
  });
});
