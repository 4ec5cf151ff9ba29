/**
 * The worker connection's gRPC compression: off where Temporal is on this machine (the engine
 * would spend CPU on bytes that never leave it), the SDK's gzip across a network, and whatever the
 * operator sets in either case.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { workerCompression } from '../src/shared/temporal-connection.js';
import { connectWorkerConnection } from '../src/worker/connection.js';

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

  it('is what the worker connection puts on the wire', async () => {
    // A gRPC endpoint on loopback that records the headers of what reaches it and answers
    // UNIMPLEMENTED: the connection's first call (GetSystemInfo) shows its encodings.
    const seen: http2.IncomingHttpHeaders[] = [];
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      seen.push(headers);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const firstCall = async (setting: 'gzip' | undefined): Promise<http2.IncomingHttpHeaders> => {
      seen.length = 0;
      const connection = await connectWorkerConnection({ embeddedAddress: address }, setting).catch(() => undefined);
      await connection?.close();
      assert.ok(seen[0], 'the connection made a call');
      return seen[0];
    };
    try {
      const loopback = await firstCall(undefined);
      assert.equal(loopback['grpc-encoding'], undefined);
      assert.doesNotMatch(String(loopback['grpc-accept-encoding'] ?? ''), /gzip/);
      const gzip = await firstCall('gzip');
      assert.equal(gzip['grpc-encoding'], 'gzip');
      assert.match(String(gzip['grpc-accept-encoding']), /gzip/);
    } finally {
      server.close();
    }
  });
});
