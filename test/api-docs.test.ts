/** The OpenAPI document is valid 3.1, covers every endpoint and status, and the docs page serves. */
import assert from 'node:assert/strict';
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
    assert.deepEqual(statuses('/v1/tasks', 'post'), ['200', '202', '400', '401', '409', '413', '415', '429', '503']);
    assert.deepEqual(statuses('/v1/tasks', 'get'), ['200', '400', '401', '429', '503']);
    assert.deepEqual(statuses('/v1/tasks/{id}', 'get'), ['200', '400', '401', '404', '429', '503']);
    assert.deepEqual(statuses('/v1/tasks/{id}/cancel', 'post'), ['202', '400', '401', '404', '409', '429', '503']);
    assert.deepEqual(statuses('/healthz', 'get'), ['200']);
    assert.deepEqual(statuses('/readyz', 'get'), ['200', '503']);

    const create = document.paths['/v1/tasks'].post;
    const media = create.requestBody.content['application/json'];
    assert.deepEqual(media.schema.required, ['callbackUrl']);
    assert.equal(media.example.callbackUrl, 'https://your-app.com/api/run-report', 'the create body has an example');
    assert.ok(create.parameters.some((parameter: any) => parameter.in === 'header' && parameter.name === 'idempotency-key'));
    assert.deepEqual(create.security, [{ apiKey: [] }]);
    assert.equal(document.components.securitySchemes.apiKey.scheme, 'bearer');
  });

  it('serves interactive docs at /docs', async () => {
    const response = await fetch(`${harness.baseUrl}/docs`, { redirect: 'follow' });
    assert.equal(response.status, 200);
    assert.match(await response.text(), /swagger-ui/i);
  });
});
