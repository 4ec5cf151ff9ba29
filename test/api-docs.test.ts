/**
 * The OpenAPI document is valid 3.1, covers every endpoint and status, and the docs page serves.
 * Whether the server keeps to it is openapi-fuzz.test.ts's question; here, the answers no route
 * gives (405, 431, bad percent-encoding) have the documented shape.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

let harness: Harness;
before(async () => {
  harness = await startHarness({ withoutWorker: true, env: { ASYNCQUEUE_API_KEYS: 'docs-test-key-123' } });
});
after(async () => {
  await harness.close();
  await stopOwnServer();
});

describe('API documentation', () => {
  it('serves a valid OpenAPI 3.1 document describing every endpoint and status', async () => {
    const response = await harness.api('GET', '/openapi.json');
    assert.equal(response.status, 200, 'public: no key needed');
    const document = response.body;
    const validator = new Validator();
    const result = await validator.validate(document);
    assert.equal(result.valid, true, JSON.stringify(result.errors));
    assert.equal(document.openapi, '3.1.0');

    const statuses = (path: string, method: string) => Object.keys(document.paths[path][method].responses).sort();
    // 408 and 431 come from the HTTP server before any route: every operation lists them.
    const transport = ['408', '431'];
    const withTransport = (list: string[]) => [...list, ...transport].sort();
    const taskErrors = ['400', '401', '429', '503'];
    const bodyErrors = ['413', '415'];
    assert.deepEqual(statuses('/v1/tasks', 'post'), withTransport(['200', '202', '409', ...bodyErrors, ...taskErrors]));
    assert.deepEqual(statuses('/v1/tasks', 'get'), withTransport(['200', ...taskErrors]));
    assert.deepEqual(statuses('/v1/tasks/{id}', 'get'), withTransport(['200', '404', ...taskErrors]));
    for (const action of ['cancel', 'progress', 'complete', 'fail']) {
      assert.deepEqual(
        statuses(`/v1/tasks/{id}/${action}`, 'post'),
        withTransport(['202', '404', '409', ...bodyErrors, ...taskErrors]),
        action,
      );
    }
    assert.deepEqual(statuses('/healthz', 'get'), withTransport(['200']));
    assert.deepEqual(statuses('/readyz', 'get'), withTransport(['200', '503']));
    assert.equal(document.paths['/healthz'].get.responses['431'].$ref, '#/components/responses/RequestHeaderFieldsTooLarge');
    for (const { description } of Object.values(document.paths['/v1/tasks'].post.responses) as Array<{ description?: string }>) {
      assert.notEqual(description, 'Default Response', 'every response says what it means');
    }

    // Headers the server always sends with a status are documented, and required.
    const header = (path: string, method: string, status: string, name: string) =>
      document.paths[path][method].responses[status].headers?.[name];
    assert.deepEqual(header('/v1/tasks', 'post', '202', 'location')?.required, true);
    assert.deepEqual(header('/v1/tasks', 'post', '200', 'location')?.required, true);
    assert.equal(
      header('/v1/tasks', 'post', '202', 'location')?.schema.required,
      undefined,
      'required is the header’s, not its schema’s',
    );
    for (const status of ['429', '503'])
      assert.deepEqual(header('/v1/tasks/{id}', 'get', status, 'retry-after')?.schema.type, 'integer');
    assert.equal(header('/v1/tasks/{id}/fail', 'post', '401', 'www-authenticate')?.required, true);

    // The cancel body is optional (CONTRACT); the create body is not.
    assert.equal(document.paths['/v1/tasks/{id}/cancel'].post.requestBody.required, false);
    assert.equal(document.paths['/v1/tasks'].post.requestBody.required, true);

    const create = document.paths['/v1/tasks'].post;
    const media = create.requestBody.content['application/json'];
    assert.deepEqual(media.schema.required, ['callbackUrl']);
    assert.equal(media.example.callbackUrl, 'https://your-app.com/api/run-report', 'the create body has an example');
    const idempotencyKey = create.parameters.find(
      (parameter: any) => parameter.in === 'header' && parameter.name === 'idempotency-key',
    );
    assert.deepEqual(
      [idempotencyKey.schema.minLength, idempotencyKey.schema.maxLength, idempotencyKey.schema.pattern],
      [1, 255, '^[\\x21-\\x7e]+$'],
    );
    const cursor = document.paths['/v1/tasks'].get.parameters.find((parameter: any) => parameter.name === 'cursor');
    assert.equal(cursor.schema.pattern, '^[A-Za-z0-9_-]+$');
    assert.equal(media.schema.properties.callbackUrl.format, 'uri');
    assert.deepEqual(create.security, [{ apiKey: [] }]);
    assert.equal(document.components.securitySchemes.apiKey.scheme, 'bearer');
  });

  it('answers a method a path does not have with 405 and Allow, before reading any body', async () => {
    for (const [method, path, headers] of [
      ['TRACE', '/v1/tasks', {}],
      ['DELETE', '/v1/tasks/some-id', { authorization: 'Bearer docs-test-key-123' }],
      ['QUERY', '/healthz', {}],
      ['PUT', '/v1/tasks/some-id/cancel', { 'content-type': 'text/plain' }],
    ] as const) {
      const response = await request(method, path, headers);
      assert.equal(response.status, 405, `${method} ${path}`);
      assert.equal(JSON.parse(response.body).error.code, 'method_not_allowed');
      const allowed = response.allow?.split(', ').sort();
      const expected = path === '/v1/tasks' ? ['GET', 'HEAD', 'POST'] : path.endsWith('/cancel') ? ['POST'] : ['GET', 'HEAD'];
      assert.deepEqual(allowed, expected, `${method} ${path}`);
    }
    const unknown = await request('TRACE', '/v2/nothing', {});
    assert.equal(unknown.status, 404, 'an unknown path stays a 404');
  });

  it('answers what the router and the HTTP parser refuse with the documented error body', async () => {
    const badEncoding = await harness.api('GET', '/v1/tasks/%E0%A4%A', undefined, { authorization: 'Bearer docs-test-key-123' });
    assert.equal(badEncoding.status, 400);
    assert.deepEqual(Object.keys(badEncoding.body.error).sort(), ['code', 'message']);
    // No 414 below the header limit: an id is judged by its schema, naming the field.
    const longId = await harness.api('GET', `/v1/tasks/${'a'.repeat(5_000)}`, undefined, {
      authorization: 'Bearer docs-test-key-123',
    });
    assert.equal(longId.status, 400);
    assert.match(longId.body.error.message, /^id:/);
    const tooLarge = await rawRequest(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(tooLarge, /^HTTP\/1\.1 431 /);
    assert.match(tooLarge, /content-type: application\/json/i);
    assert.equal(JSON.parse(tooLarge.slice(tooLarge.indexOf('\r\n\r\n') + 4)).error.code, 'headers_too_large');
  });

  it('serves interactive docs at /docs, with or without the trailing slash', async () => {
    for (const path of ['/docs', '/docs/']) {
      const response = await fetch(`${harness.baseUrl}${path}`, { redirect: 'follow' });
      assert.equal(response.status, 200, path);
      assert.match(await response.text(), /swagger-ui/i, path);
    }
  });
});

/** fetch refuses TRACE; node:http does not. */
function request(
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; allow?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(`${harness.baseUrl}${path}`, { method, headers }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          ...(response.headers.allow !== undefined ? { allow: response.headers.allow } : {}),
          body,
        }),
      );
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/** fetch refuses to send a 20 KB header; a socket does not. */
function rawRequest(text: string): Promise<string> {
  const { hostname, port } = new URL(harness.baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.end(text));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}
