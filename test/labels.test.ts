/**
 * Labels: validated on create, shown in the view, a filter of the list (several labels mean all of
 * them), and the `TaskLabels` search attribute the Temporal UI filters on.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { TASK_LABELS_SEARCH_ATTRIBUTE, workflowIdForTask } from '../workflows/task-contract.js';
import { eventually } from './support/eventually.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';
import { terminateRunning } from './support/cleanup.js';

let harness: Harness;

before(async () => {
  // No worker: delayed tasks wait for ever, and their labels are all this file looks at.
  harness = await startHarness({ withoutWorker: true });
});

after(async () => {
  await terminateRunning(harness);
  await harness.close();
  await stopOwnServer();
});

/** Labels no other test (or earlier run on the same server) uses. */
function uniqueLabel(name: string): string {
  return `${name}:${randomUUID().slice(0, 8)}`;
}

const CALLBACK = 'http://127.0.0.1:9/never';

describe('labels', () => {
  it('are shown in the view, [] when none were given, and set the TaskLabels search attribute', async () => {
    const label = uniqueLabel('customer');
    const id = await harness.createTask({ callbackUrl: CALLBACK, delay: 3600, labels: [label, 'a.b_c:d=e/f-G9', label] });
    const view = await harness.task(id);
    assert.deepEqual(view.labels, [label, 'a.b_c:d=e/f-G9'], 'a repeated label is one label');

    const plain = await harness.createTask({ callbackUrl: CALLBACK, delay: 3600 });
    assert.deepEqual((await harness.task(plain)).labels, []);

    const description = await harness.client.workflow.getHandle(workflowIdForTask(id)).describe();
    assert.deepEqual(description.typedSearchAttributes.get(TASK_LABELS_SEARCH_ATTRIBUTE), [label, 'a.b_c:d=e/f-G9']);
    const { count } = await eventually(
      async () => {
        const counted = await harness.client.workflow.count(`TaskLabels = '${label}'`);
        return counted.count > 0 ? counted : undefined;
      },
      { what: 'visibility to index TaskLabels' },
    );
    assert.equal(count, 1);
  });

  it('refuses a bad label naming it, and more than ten', async () => {
    const bad = await harness.api('POST', '/v1/tasks', { callbackUrl: CALLBACK, labels: ['ok', 'fine', 'not ok'] });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /^labels\[2\]: /);
    const empty = await harness.api('POST', '/v1/tasks', { callbackUrl: CALLBACK, labels: [''] });
    assert.equal(empty.status, 400);
    assert.match(empty.body.error.message, /^labels\[0\]: /);
    const long = await harness.api('POST', '/v1/tasks', { callbackUrl: CALLBACK, labels: ['x'.repeat(65)] });
    assert.equal(long.status, 400);
    const many = await harness.api('POST', '/v1/tasks', {
      callbackUrl: CALLBACK,
      labels: Array.from({ length: 11 }, (_, i) => `l${i}`),
    });
    assert.equal(many.status, 400);
    assert.match(many.body.error.message, /^labels: /);
    const query = await harness.api('GET', '/v1/tasks?label=has%20space');
    assert.equal(query.status, 400);
    assert.match(query.body.error.message, /^label\[0\]: /);
  });

  it('filter the list: one label, and several labels mean tasks carrying all of them', async () => {
    const red = uniqueLabel('red');
    const blue = uniqueLabel('blue');
    const both = await harness.createTask({ callbackUrl: CALLBACK, delay: 3600, labels: [red, blue] });
    const onlyRed = await harness.createTask({ callbackUrl: CALLBACK, delay: 3600, labels: [red] });
    const onlyBlue = await harness.createTask({ callbackUrl: CALLBACK, delay: 3600, labels: [blue, 'other'] });
    await harness.createTask({ callbackUrl: CALLBACK, delay: 3600 });

    const listed = async (query: string, expected: number): Promise<string[]> =>
      eventually(
        async () => {
          const response = await harness.api('GET', `/v1/tasks?${query}&limit=100`);
          assert.equal(response.status, 200, JSON.stringify(response.body));
          const ids = (response.body.tasks as Array<{ id: string }>).map((task) => task.id).sort();
          return ids.length >= expected ? ids : undefined;
        },
        { what: `the list for ${query}` },
      );
    assert.deepEqual(await listed(`label=${encodeURIComponent(red)}`, 2), [both, onlyRed].sort());
    assert.deepEqual(await listed(`label=${encodeURIComponent(blue)}`, 2), [both, onlyBlue].sort());
    assert.deepEqual(await listed(`label=${encodeURIComponent(red)}&label=${encodeURIComponent(blue)}`, 1), [both]);
    const page = await harness.api(
      'GET',
      `/v1/tasks?label=${encodeURIComponent(red)}&label=${encodeURIComponent(blue)}&status=scheduled`,
    );
    assert.deepEqual(
      page.body.tasks.map((task: { id: string; labels: string[] }) => [task.id, task.labels]),
      [[both, [red, blue]]],
    );
  });
});
