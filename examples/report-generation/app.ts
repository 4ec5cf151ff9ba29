/**
 * The seed's app, runnable: an endpoint that offloads report generation to AsyncQueue and answers
 * at once with a job id, the callback that does the slow work, the webhook that records the
 * result, job polling, and a small page that polls and shows the download link.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { ASYNC_COMPLETION_HEADERS, AsyncQueue, type TaskEvent } from 'asyncqueue/client';
import { fastifyReceiver } from 'asyncqueue/client/fastify';

interface Job {
  id: string;
  taskId?: string;
  status: 'pending' | 'processing' | 'completed' | 'failed';
  params: { dateRange: string; format: string; background: boolean };
  reportUrl?: string;
  pageCount?: number;
  error?: string;
}

export interface ReportAppOptions {
  /** Where AsyncQueue's API listens. */
  asyncQueueUrl: string;
  asyncQueueApiKey?: string;
  /** The secret AsyncQueue signs with (`whsec_…`): this app accepts only AsyncQueue's calls. */
  signingSecret: string;
  /** How AsyncQueue reaches this app. */
  publicUrl: string;
  /** How long the "slow" report takes. */
  reportSeconds?: number;
}

export async function createReportApp(options: ReportAppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: 'warn' } });
  const aq = new AsyncQueue({
    baseUrl: options.asyncQueueUrl,
    ...(options.asyncQueueApiKey !== undefined ? { apiKey: options.asyncQueueApiKey } : {}),
  });
  const jobs = new Map<string, Job>(); // stands in for the app's database

  // Step 2: offload the call and answer at once with a job id.
  app.post<{ Body: { dateRange?: string; format?: string; background?: boolean } }>('/api/generate-report', async (request) => {
    const jobId = randomUUID();
    const params = {
      dateRange: request.body?.dateRange ?? 'last-30-days',
      format: request.body?.format ?? 'pdf',
      // A report too long to hold one HTTP request open for: taken, then completed later.
      background: request.body?.background === true,
    };
    jobs.set(jobId, { id: jobId, status: 'pending', params });
    const task = await aq.tasks.create(
      {
        callbackUrl: `${options.publicUrl}/api/run-report`,
        payload: { jobId, ...params },
        webhookUrl: `${options.publicUrl}/api/on-report-ready`,
        retries: 3,
        timeout: 120,
      },
      { idempotencyKey: `report-${jobId}` },
    );
    jobs.get(jobId)!.taskId = task.id; // a failed task has no result naming the job: find it by task
    return { jobId, status: 'pending' };
  });

  // Steps 3 and 4 are AsyncQueue's calls into this app: verified before anything else happens.
  await app.register(async (scope) => {
    await scope.register(fastifyReceiver({ secret: options.signingSecret }));

    // Step 3: the slow work, with a progress report on the way. Answered with the result (any 2xx,
    // a plain 202 included), or, for a background job, at once with 202 + AsyncQueue-Completion:
    // async, and completed later with the task token the request carried.
    scope.post<{ Body: { jobId: string; dateRange: string; format: string; background?: boolean } }>(
      '/api/run-report',
      async (request, reply) => {
        const { jobId, format } = request.body;
        const job = jobs.get(jobId);
        if (job) job.status = 'processing';
        const taskToken = request.headers['asyncqueue-task-token'];
        const taskId = request.asyncQueue?.taskId;
        const render = async () => {
          const seconds = options.reportSeconds ?? 2;
          await sleep((seconds * 1000) / 2);
          if (typeof taskToken === 'string' && taskId !== undefined) {
            await aq.tasks.reportProgress(taskId, { percent: 50, message: 'rendering' }, { taskToken });
          }
          await sleep((seconds * 1000) / 2);
          return { jobId, reportUrl: `${options.publicUrl}/reports/${jobId}.${format}`, pageCount: 12 };
        };
        if (request.body.background !== true || typeof taskToken !== 'string' || taskId === undefined) return render();
        void render().then(
          (report) => aq.tasks.complete(taskId, report, { taskToken }),
          (err: unknown) => aq.tasks.fail(taskId, { message: String(err) }, { taskToken }),
        );
        return reply.code(202).headers(ASYNC_COMPLETION_HEADERS).send({ accepted: true });
      },
    );

    // Step 4: the result arrives; delivery is at least once, so this is idempotent.
    scope.post('/api/on-report-ready', async (request) => {
      const event = request.body as TaskEvent;
      const result = event.result as { jobId: string; reportUrl: string; pageCount: number } | undefined;
      const job = [...jobs.values()].find((candidate) => candidate.taskId === event.taskId);
      if (job && event.type === 'task.succeeded' && result) {
        Object.assign(job, { status: 'completed', reportUrl: result.reportUrl, pageCount: result.pageCount });
      } else if (job) {
        Object.assign(job, { status: 'failed', error: event.error?.message ?? event.type });
      }
      return { received: true };
    });
  });

  // Step 5: the frontend polls its job.
  app.get<{ Params: { id: string } }>('/api/jobs/:id', async (request, reply) => {
    const job = jobs.get(request.params.id);
    return job ?? reply.code(404).send({ error: 'no such job' });
  });

  app.get<{ Params: { file: string } }>('/reports/:file', async (request, reply) =>
    reply.type('text/plain').send(`Report ${request.params.file} (generated by the example)\n`),
  );

  app.get('/', async (_request, reply) => reply.type('text/html').send(PAGE));
  return app;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Reports — AsyncQueue example</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto}button{font-size:1rem;padding:.5rem 1rem}#status{margin-top:1rem}</style>
</head><body>
<h1>Quarterly report</h1>
<p>Generating a report takes a while; the page answers at once and polls for the result.</p>
<button id="generate">Generate report</button>
<div id="status"></div>
<script>
const status = document.getElementById('status');
const pollJobStatus = async (jobId) => {
  const res = await fetch('/api/jobs/' + jobId);
  const data = await res.json();
  if (data.status === 'completed') {
    status.innerHTML = '<a id="download" href="' + data.reportUrl + '">Download the report</a> (' + data.pageCount + ' pages)';
  } else if (data.status === 'failed') {
    status.textContent = 'Report generation failed. Please try again.';
  } else {
    status.textContent = 'Working… (' + data.status + ')';
    setTimeout(() => pollJobStatus(jobId), 1000);
  }
};
document.getElementById('generate').addEventListener('click', async () => {
  status.textContent = 'Starting…';
  const res = await fetch('/api/generate-report', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dateRange: '2026-Q3', format: 'pdf' }) });
  const { jobId } = await res.json();
  pollJobStatus(jobId);
});
</script>
</body></html>`;
