/**
 * `npm run bench -- --batch-only [--batches 20] [--batch-size 100]`: how long `POST /v1/tasks/batch`
 * takes to answer a full batch (the bar: 100 entries in ≤ 1 s at p50), against the same
 * engine, API and worker processes as the rest of the benchmark (the dev server in memory, or
 * `--cluster`, or TEMPORAL_ADDRESS).
 *
 * One warm-up batch, then the batches one after the other; before each, the previous batch's tasks
 * are let finish (their webhooks arrive, or 30 s pass), so that every batch is measured on an
 * idle system rather than on a worker still calling the last one's callbacks. Latency is from
 * sending the request to having read the whole answer. Every entry must come back 202.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isRecord } from '../shared/json-values.js';
import { sleep } from '../shared/timing.js';
import { log, now } from './clock.js';
import { distribution, round } from './distribution.js';
import { startEngine } from './engine.js';
import { parseOptions } from './options.js';
import { Sampler } from './process-sampler.js';
import { callbackHandler, Endpoint, webhookHandler, type WebhookArrival } from './receivers.js';
import { resources } from './run-resources.js';
import { asyncQueueEnv } from './service-env.js';
import { startAsyncQueue } from './targets/asyncqueue.js';

export const BATCH_ONLY_FLAG = '--batch-only';
const USAGE = 'usage: npm run bench -- --batch-only [--batches N] [--batch-size 1-100] [--cluster] [--out DIR]';
const DRAIN_MAX_MS = 30_000;

export async function runBatchBench(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv.filter((arg) => arg !== BATCH_ONLY_FLAG),
    options: {
      batches: { type: 'string', default: '20' },
      'batch-size': { type: 'string', default: '100' },
      cluster: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
  const batches = Number(values.batches);
  const size = Number(values['batch-size']);
  if (!Number.isInteger(batches) || batches < 1) throw new Error(`--batches: must be a positive integer\n${USAGE}`);
  if (!Number.isInteger(size) || size < 1 || size > 100) throw new Error(`--batch-size: must be 1–100\n${USAGE}`);
  // The rest of the benchmark's settings (engine, service environment) as a quick run has them.
  const options = parseOptions([
    '--quick',
    '--skip',
    'concurrency',
    ...(values.cluster ? ['--cluster'] : []),
    ...(values.out ? ['--out', values.out] : []),
  ]);
  const runId = randomUUID().slice(0, 8);
  const loadAtStart = os.loadavg().map((value) => round(value, 2) ?? 0);
  resources.tmpDir = await mkdtemp(path.join(os.tmpdir(), 'asyncqueue-bench-batch-'));
  const engine = await startEngine(options);
  resources.engine = engine;

  const webhooks = new Map<string, WebhookArrival>();
  const callbackEndpoint = await Endpoint.start(callbackHandler);
  const webhookEndpoint = await Endpoint.start(webhookHandler(webhooks));
  resources.endpoints.push(callbackEndpoint, webhookEndpoint);
  const receivers = { callbackOrigin: callbackEndpoint.origin, webhookUrl: `${webhookEndpoint.origin}/hook`, webhooks };
  const env = { ...asyncQueueEnv(options, engine.address, runId, resources.tmpDir), TEMPORAL_NAMESPACE: engine.namespace };
  const { api } = await startAsyncQueue(options, env, new Sampler(), receivers);

  const entries = (batch: number) =>
    Array.from({ length: size }, (_, index) => ({
      callbackUrl: `${receivers.callbackOrigin}/cb/fast`,
      payload: { bench: 'batch', batch, index },
      webhookUrl: receivers.webhookUrl,
    }));
  const latencies: number[] = [];
  const drainWaits: number[] = [];
  let pending: string[] = [];
  for (let batch = 0; batch <= batches; batch++) {
    const drainStart = now();
    while (pending.some((id) => !webhooks.has(id)) && now() - drainStart < DRAIN_MAX_MS) await sleep(50);
    if (batch > 0) drainWaits.push(now() - drainStart);
    const sentAt = now();
    const answer = await api.post('/v1/tasks/batch', { tasks: entries(batch) });
    const elapsed = now() - sentAt;
    const results = isRecord(answer.body) && Array.isArray(answer.body.results) ? answer.body.results : [];
    const created = results.filter((result) => isRecord(result) && result.status === 202);
    if (answer.status !== 200 || created.length !== size) {
      throw new Error(`batch ${batch}: HTTP ${answer.status}, ${created.length}/${size} created: ${JSON.stringify(answer.body)}`);
    }
    pending = created.map((result) => String((result as { id: unknown }).id));
    if (batch === 0) log(`warm-up batch of ${size}: ${elapsed.toFixed(1)} ms`);
    else latencies.push(elapsed);
  }
  const latency = distribution(latencies);
  const report = {
    startedAt: new Date().toISOString(),
    engine: engine.kind,
    batches,
    batchSize: size,
    latencyMs: latency,
    perTaskMs: round((latency.p50 ?? 0) / size, 2),
    drainWaitMs: distribution(drainWaits),
    loadAverage: { start: loadAtStart, end: os.loadavg().map((value) => round(value, 2) ?? 0) },
  };
  log(
    `POST /v1/tasks/batch with ${size} entries, ${batches} batches: p50 ${latency.p50} ms, p99 ${latency.p99} ms, ` +
      `max ${latency.max} ms (load average ${loadAtStart.join(' ')} at start)`,
  );
  await mkdir(options.out, { recursive: true });
  const ignoreFile = path.join(options.out, '.gitignore');
  if (!existsSync(ignoreFile)) await writeFile(ignoreFile, '# benchmark output: never committed\n*\n');
  const file = path.join(options.out, `bench-batch-${report.startedAt.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  log(`results: ${file}`);
  return 0;
}
