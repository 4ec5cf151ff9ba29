/** The runnable example (examples/report-generation) end to end against the real service. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createReportApp } from '../examples/report-generation/app.js';
import { freePort } from '../src/dev/dev-server.js';
import { eventually } from './support/eventually.js';
import { TEST_SIGNING_SECRET, startHarness, stopOwnServer, type Harness } from './support/harness.js';

let harness: Harness;
let app: FastifyInstance;
let appUrl: string;

before(async () => {
  harness = await startHarness();
  const port = await freePort();
  appUrl = `http://127.0.0.1:${port}`;
  app = await createReportApp({
    asyncQueueUrl: harness.baseUrl,
    signingSecret: TEST_SIGNING_SECRET,
    publicUrl: appUrl,
    reportSeconds: 1,
  });
  await app.listen({ port, host: '127.0.0.1' });
});

after(async () => {
  await app.close();
  await harness.close();
  await stopOwnServer();
});

describe('the report-generation example', () => {
  it('answers at once, runs the report through AsyncQueue and shows the download link', async () => {
    const response = await fetch(`${appUrl}/api/generate-report`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dateRange: '2026-Q3', format: 'pdf' }),
    });
    const { jobId, status } = (await response.json()) as { jobId: string; status: string };
    assert.equal(status, 'pending');
    // Answered before the report was done, read from the task rather than a clock (a loaded
    // cluster took over a second for the create itself): the report takes a second once its
    // callback begins, and its task has not succeeded when the answer is in.
    const { taskId } = (await (await fetch(`${appUrl}/api/jobs/${jobId}`)).json()) as { taskId: string };
    assert.notEqual((await harness.task(taskId)).status, 'succeeded', 'the endpoint answers before the report is done');

    const job = await eventually(
      async () => {
        const current = (await (await fetch(`${appUrl}/api/jobs/${jobId}`)).json()) as { status: string; reportUrl?: string };
        return current.status === 'completed' ? current : undefined;
      },
      { what: 'the job to complete' },
    );
    assert.equal(job.reportUrl, `${appUrl}/reports/${jobId}.pdf`);
    assert.equal((await fetch(job.reportUrl!)).status, 200);

    const page = await (await fetch(appUrl)).text();
    assert.match(page, /Generate report/);
    assert.match(page, /pollJobStatus/);
  });

  it('runs a background report through async completion: 202 + AsyncQueue-Completion: async, then /complete', async () => {
    const response = await fetch(`${appUrl}/api/generate-report`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dateRange: '2026-Q4', format: 'csv', background: true }),
    });
    const { jobId } = (await response.json()) as { jobId: string };
    const job = await eventually(
      async () => {
        const current = (await (await fetch(`${appUrl}/api/jobs/${jobId}`)).json()) as {
          status: string;
          reportUrl?: string;
          taskId: string;
        };
        return current.status === 'completed' ? current : undefined;
      },
      { what: 'the background job to complete' },
    );
    assert.equal(job.reportUrl, `${appUrl}/reports/${jobId}.csv`);
    const task = await harness.task(job.taskId);
    assert.equal(task.attempts, 1);
    assert.equal(task.result.reportUrl, job.reportUrl);
    // The attempt was awaited on the server: the callback answered at once, the result came later.
    const events = (await harness.client.workflow.getHandle(`task-${job.taskId}`).fetchHistory()).events ?? [];
    assert.ok(events.some((event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'awaitCompletion'));
  });

  it('refuses calls that are not signed by AsyncQueue', async () => {
    const forged = await fetch(`${appUrl}/api/on-report-ready`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'task.succeeded', taskId: 'x', result: { jobId: 'x' } }),
    });
    assert.equal(forged.status, 401);
  });
});
