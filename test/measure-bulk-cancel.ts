/**
 * `node dist/test/measure-bulk-cancel.js [N]`: the README's bulk-cancel figure. Starts a dev
 * server, a worker and the API (test/support/harness.ts), creates N (default 1000) delayed tasks
 * with one label, cancels them with one `POST /v1/tasks/bulk`, and times until the operation has
 * completed and visibility counts every task as cancelled. Not part of `npm test`.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startHarness, stopOwnServer } from './support/harness.js';

const count = Number(process.argv[2] ?? 1000);
const harness = await startHarness();
try {
  const label = `measure:${randomUUID().slice(0, 8)}`;
  const createStart = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < count) {
        next++;
        await harness.createTask({ callbackUrl: 'http://127.0.0.1:9/never', delay: 3600, labels: [label] });
      }
    }),
  );
  const createdMs = performance.now() - createStart;
  // Visibility lists every task before the operation starts, as it would for tasks created earlier.
  for (;;) {
    const { count: listed } = await harness.client.workflow.count(`TaskLabels = '${label}'`);
    if (listed >= count) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  const start = performance.now();
  const response = await harness.api('POST', '/v1/tasks/bulk', { action: 'cancel', filter: { label } });
  assert.equal(response.status, 202, JSON.stringify(response.body));
  let operation;
  for (;;) {
    operation = (await harness.api('GET', `/v1/operations/${response.body.id}`)).body;
    if (operation.state !== 'running') break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const operationMs = performance.now() - start;
  for (;;) {
    const { count: cancelled } = await harness.client.workflow.count(
      `TaskLabels = '${label}' AND TaskStatus = 'cancelled' AND ExecutionStatus = 'Completed'`,
    );
    if (cancelled >= count) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const allMs = performance.now() - start;
  process.stdout.write(
    `${JSON.stringify({ tasks: count, createSeconds: +(createdMs / 1000).toFixed(1), operation, operationSeconds: +(operationMs / 1000).toFixed(1), allCancelledSeconds: +(allMs / 1000).toFixed(1) })}\n`,
  );
} finally {
  await harness.close();
  await stopOwnServer();
}
