/**
 * The worker connection's gRPC compression: off where Temporal is on this machine (the engine
 * would spend CPU on bytes that never leave it), the SDK's gzip across a network, and whatever the
 * operator sets in either case.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { workerCompression } from '../src/shared/temporal-connection.js';

describe('worker connection compression', () => {
  it('is off for a Temporal on this machine, however the address is spelled', () => {
    for (const address of ['127.0.0.1:7233', '127.0.0.2:7233', 'localhost:7233', 'localhost', '[::1]:7233', '::1']) {
      assert.equal(workerCompression(undefined, address), 'none', address);
    }
    // No address: the SDK's default, localhost:7233.
    assert.equal(workerCompression(undefined, undefined), 'none');
  });

  it('is gzip across a network', () => {
    for (const address of [
      'temporal.internal:7233',
      'my-ns.a1b2c.tmprl.cloud:7233',
      '10.0.0.5:7233',
      '[2001:db8::1]:7233',
      '2001:db8::1',
      'localhost.example.com:7233',
    ]) {
      assert.equal(workerCompression(undefined, address), 'gzip', address);
    }
  });

  it('is what the operator set, wherever Temporal is', () => {
    assert.equal(workerCompression('gzip', '127.0.0.1:7233'), 'gzip');
    assert.equal(workerCompression('none', 'my-ns.a1b2c.tmprl.cloud:7233'), 'none');
  });
});
