/**
 * `npm run soak -- --minutes N`: a soak test of AsyncQueue under injected faults.
 *
 * It runs a whole AsyncQueue on this machine — a file-backed Temporal dev server, the API (in this
 * process, so results are easy to read), two `worker-main` child processes (so they can be killed
 * for real) and a loopback receiver playing the app's callback and webhook endpoints — and feeds
 * it an open-loop mix of succeeding, failing, flaky, slow, cancelled and delayed tasks while it
 * restarts workers (SIGTERM and SIGKILL) and kill -9s the Temporal server. Then it stops creating,
 * lets the system drain, and checks the books: created = succeeded + failed + cancelled, nothing
 * stuck, every outcome what its kind should give, every webhook delivered. Exit code 0 only then.
 *
 * Options: --minutes (10), --rate tasks/s (4), --drain-minutes (5), --workers (2), --seed,
 * --out report.json (default: a file in the OS temp folder). All traffic stays on 127.0.0.1.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { DevServer, freePort } from '../src/dev-server.js';
import type { TaskView } from '../src/task-service.js';
import { runEntry, type Started } from '../test/support/processes.js';
import { Receiver, type ReceivedRequest, type Responder } from '../test/support/receiver.js';
import { isRecord, parseJson } from './json-values.js';
import { percentile, sleep, within } from './timing.js';

// ─── options ────────────────────────────────────────────────────────────────────────────────────

interface SoakOptions {
  minutes: number;
  rate: number;
  drainMinutes: number;
  workers: number;
  seed: number;
  out: string;
}

const USAGE = `usage: node dist/tools/soak.js [--minutes 10] [--rate 4] [--drain-minutes 5] [--workers 2] [--seed N] [--out file.json]`;

function parseOptions(argv: string[]): SoakOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string', default: '10' },
      rate: { type: 'string', default: '4' },
      'drain-minutes': { type: 'string', default: '5' },
      workers: { type: 'string', default: '2' },
      seed: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const number = (name: string, raw: string | undefined, min: number, max: number): number => {
    const value = Number(raw);
    if (raw === undefined || !Number.isFinite(value) || value < min || value > max) {
      throw new Error(`--${name} must be a number from ${min} to ${max}, got "${raw}"\n${USAGE}`);
    }
    return value;
  };
  const seed = values.seed !== undefined ? Math.floor(number('seed', values.seed, 0, 2 ** 32 - 1)) : randomBytes(4).readUInt32BE(0);
  return {
    minutes: number('minutes', values.minutes, 0.1, 24 * 60),
    // Modest by default: two cores carry the dev server, two workers, the API and the receiver.
    rate: number('rate', values.rate, 0.1, 50),
    drainMinutes: number('drain-minutes', values['drain-minutes'], 0.5, 60),
    workers: Math.floor(number('workers', values.workers, 1, 8)),
    seed,
    // Never litter the repository: without --out the report goes to the temp folder.
    out: path.resolve(values.out ?? path.join(tmpdir(), `asyncqueue-soak-${seed}-${Date.now()}.json`)),
  };
}

// ─── small helpers ──────────────────────────────────────────────────────────────────────────────

const T0 = Date.now();

function log(message: string): void {
  const elapsed = ((Date.now() - T0) / 1000).toFixed(1).padStart(7);
  process.stdout.write(`${new Date().toISOString()} +${elapsed}s  ${message}\n`);
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** A seeded PRNG (mulberry32): `--seed` replays the same mix of tasks and fault timings. */
class Rng {
  constructor(private state: number) {}

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  between(min: number, max: number): number {
    return min + this.next() * (max - min);
  }

  int(min: number, max: number): number {
    return Math.floor(this.between(min, max + 1));
  }

  weighted<K extends string>(weights: Record<K, number>): K {
    const entries = Object.entries(weights) as [K, number][];
    let roll = this.next() * entries.reduce((sum, [, weight]) => sum + weight, 0);
    for (const [key, weight] of entries) {
      roll -= weight;
      if (roll < 0) return key;
    }
    return (entries[entries.length - 1] as [K, number])[0];
  }
}

// ─── the task mix ───────────────────────────────────────────────────────────────────────────────

type Kind = 'succeeding' | 'failing' | 'flaky' | 'slow' | 'cancelled' | 'delayed';
type Ending = 'succeeded' | 'failed' | 'cancelled';
const ENDINGS: readonly string[] = ['succeeded', 'failed', 'cancelled'];

interface KindSpec {
  weight: number;
  callbackPath: string;
  /** Enough retries that a task hit by a worker or server kill still gets its real answer. */
  retries: number;
  timeout: number;
  expect: Ending;
  /** Callback requests the task needs without faults; more are duplicates caused by kills. */
  expectedCallbacks: number;
}

const KINDS: Record<Kind, KindSpec> = {
  succeeding: { weight: 34, callbackPath: '/cb/succeed', retries: 5, timeout: 10, expect: 'succeeded', expectedCallbacks: 1 },
  failing: { weight: 12, callbackPath: '/cb/fail', retries: 5, timeout: 10, expect: 'failed', expectedCallbacks: 1 },
  flaky: { weight: 14, callbackPath: '/cb/flaky', retries: 5, timeout: 10, expect: 'succeeded', expectedCallbacks: 2 },
  slow: { weight: 14, callbackPath: '/cb/slow', retries: 5, timeout: 15, expect: 'succeeded', expectedCallbacks: 1 },
  // The callback hangs; only the cancel ends the task (or, if the cancel never lands, the timeout).
  cancelled: { weight: 12, callbackPath: '/cb/hang', retries: 2, timeout: 30, expect: 'cancelled', expectedCallbacks: 1 },
  delayed: { weight: 14, callbackPath: '/cb/delayed', retries: 5, timeout: 10, expect: 'succeeded', expectedCallbacks: 1 },
};
const KIND_NAMES = Object.keys(KINDS) as Kind[];
const KIND_WEIGHTS = Object.fromEntries(KIND_NAMES.map((kind) => [kind, KINDS[kind].weight])) as Record<Kind, number>;

/** Share of tasks whose webhook endpoint answers 503 to the first delivery. */
const FLAKY_WEBHOOK_SHARE = 0.3;

interface CreateBody {
  callbackUrl: string;
  payload: { marker: string; kind: Kind; slowMs?: number };
  webhookUrl: string;
  retries: number;
  timeout: number;
  delay: number;
}

type CancelOutcome = 'accepted' | 'already-ended' | 'gave-up' | 'not-found';

/** One task of the soak, from the first create request to its final view. */
interface SoakTask {
  seq: number;
  key: string;
  kind: Kind;
  body: CreateBody;
  sentAt: number;
  id?: string;
  /** Every id any answer for this key named: more than one would be a broken Idempotency-Key. */
  idsSeen: Set<string>;
  createTries: number;
  /** 200 answers: the API had already created the task on an earlier, lost or 503'd attempt. */
  repeatAnswers: number;
  createError?: string;
  cancel?: CancelOutcome;
  /** When the 202 for the cancel came back: the cancel signal was in the task's history by then. */
  cancelAcceptedAt?: number;
  final?: TaskView;
}

function newTask(seq: number, runId: string, rng: Rng, receiverUrl: (path: string) => string): SoakTask {
  const kind = rng.weighted(KIND_WEIGHTS);
  const spec = KINDS[kind];
  const marker = `${runId}-${seq}`;
  return {
    seq,
    key: `soak-${marker}`,
    kind,
    body: {
      callbackUrl: receiverUrl(spec.callbackPath),
      payload: { marker, kind, ...(kind === 'slow' ? { slowMs: rng.int(1_000, 4_000) } : {}) },
      webhookUrl: receiverUrl(rng.next() < FLAKY_WEBHOOK_SHARE ? '/hook/flaky' : '/hook/ok'),
      retries: spec.retries,
      timeout: spec.timeout,
      delay: kind === 'delayed' ? rng.int(1, 5) : 0,
    },
    sentAt: 0,
    idsSeen: new Set(),
    createTries: 0,
    repeatAnswers: 0,
  };
}

// ─── the app's endpoints: callbacks and webhooks on one loopback receiver ───────────────────────

interface CallbackHit {
  attempt: string;
  messageId: string;
  at: number;
}

interface WebhookHit {
  messageId: string;
  status: string;
  answered: number;
  signatureOk: boolean;
  at: number;
}

/** What the receiver saw, by task id. */
class Traffic {
  readonly callbacks = new Map<string, CallbackHit[]>();
  readonly webhooks = new Map<string, WebhookHit[]>();
  private readonly firstWebhookRefused = new Set<string>();
  private readonly verifier: Webhook;

  constructor(secret: string) {
    this.verifier = new Webhook(secret);
  }

  install(receiver: Receiver): void {
    const answer = (status: number, body: unknown) => (response: ServerResponse) => {
      if (response.destroyed || response.writableEnded) return; // AsyncQueue already hung up
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    const callback = (respond: (received: ReceivedRequest, response: ServerResponse) => void): Responder => (received, response) => {
      this.recordCallback(received);
      respond(received, response);
    };
    const marker = (received: ReceivedRequest): unknown => {
      const payload = parseJson(received.body);
      return isRecord(payload) ? payload.marker : undefined;
    };
    receiver
      .always('/cb/succeed', callback((received, response) => answer(200, { marker: marker(received) })(response)))
      .always('/cb/fail', callback((_received, response) => answer(422, { error: 'unprocessable' })(response)))
      .always(
        '/cb/flaky',
        callback((received, response) =>
          received.headers['asyncqueue-attempt'] === '1'
            ? answer(503, { error: 'try again' })(response)
            : answer(200, { marker: marker(received) })(response),
        ),
      )
      .always(
        '/cb/slow',
        callback((received, response) => {
          const payload = parseJson(received.body);
          const slowMs = isRecord(payload) && typeof payload.slowMs === 'number' ? payload.slowMs : 2_000;
          setTimeout(() => answer(200, { marker: marker(received), slowMs })(response), slowMs);
        }),
      )
      // Never answers: AsyncQueue aborts the request when the task is cancelled (or times out).
      .always('/cb/hang', callback(() => undefined))
      .always('/cb/delayed', callback((received, response) => answer(200, { marker: marker(received) })(response)))
      .always('/hook/ok', (received, response) => answer(this.recordWebhook(received, false), { received: true })(response))
      .always('/hook/flaky', (received, response) => answer(this.recordWebhook(received, true), { received: true })(response));
  }

  /** Webhook requests answered 2xx for this task. */
  delivered(taskId: string): WebhookHit[] {
    return (this.webhooks.get(taskId) ?? []).filter((hit) => hit.answered < 300);
  }

  get callbackCount(): number {
    let count = 0;
    for (const hits of this.callbacks.values()) count += hits.length;
    return count;
  }

  get webhookCount(): number {
    let count = 0;
    for (const hits of this.webhooks.values()) count += hits.length;
    return count;
  }

  private recordCallback(received: ReceivedRequest): void {
    const taskId = header(received.headers, 'asyncqueue-task-id') ?? 'unknown';
    const hits = this.callbacks.get(taskId) ?? [];
    hits.push({
      attempt: header(received.headers, 'asyncqueue-attempt') ?? '?',
      messageId: header(received.headers, 'webhook-id') ?? '',
      at: received.receivedAt,
    });
    this.callbacks.set(taskId, hits);
  }

  /** Records a webhook delivery and returns the status code to answer it with. */
  private recordWebhook(received: ReceivedRequest, refuseFirst: boolean): number {
    const event = parseJson(received.body);
    const taskId = isRecord(event) && typeof event.taskId === 'string' ? event.taskId : 'unknown';
    let answered = 200;
    if (refuseFirst && !this.firstWebhookRefused.has(taskId)) {
      this.firstWebhookRefused.add(taskId);
      answered = 503;
    }
    const hits = this.webhooks.get(taskId) ?? [];
    hits.push({
      messageId: header(received.headers, 'webhook-id') ?? '',
      status: isRecord(event) && typeof event.status === 'string' ? event.status : '?',
      answered,
      signatureOk: this.signatureOk(received),
      at: received.receivedAt,
    });
    this.webhooks.set(taskId, hits);
    return answered;
  }

  private signatureOk(received: ReceivedRequest): boolean {
    const headers: Record<string, string> = {};
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) headers[name] = header(received.headers, name) ?? '';
    try {
      this.verifier.verify(received.body, headers);
      return true;
    } catch {
      return false;
    }
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

// ─── the API, seen as a client ──────────────────────────────────────────────────────────────────

interface ApiAnswer {
  /** 0: no HTTP answer at all (connection refused or reset, or our own timeout). */
  status: number;
  body: unknown;
  retryAfterMs: number | undefined;
}

/** Counts every API answer by "METHOD route status", so odd answers (a 500) show in the report. */
const apiAnswers = new Map<string, number>();

interface ApiError {
  at: string;
  type: string;
  message: string;
  stack: string;
}

/** Errors the API logged other than the expected ones (Temporal away, load shed): each is a finding. */
const apiErrors: ApiError[] = [];
const EXPECTED_API_ERRORS = new Set(['TemporalUnavailableError', 'OverloadedError']);

/** Fastify's logger writes here (level error): the API answers 500 without details, its log has them. */
const apiLogStream = {
  write(line: string): void {
    const entry = parseJson(line);
    const err = isRecord(entry) && isRecord(entry.err) ? entry.err : undefined;
    if (err === undefined) return;
    const type = typeof err.type === 'string' ? err.type : 'unknown';
    if (EXPECTED_API_ERRORS.has(type) || apiErrors.length >= 50) return;
    const message = typeof err.message === 'string' ? err.message : '';
    const stack = typeof err.stack === 'string' ? err.stack.split('\n').slice(0, 8).join('\n') : '';
    apiErrors.push({ at: new Date().toISOString(), type, message, stack });
    log(`API ERROR ${type}: ${message}`);
  },
};

async function callApi(
  baseUrl: string,
  method: string,
  route: string,
  urlPath: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiAnswer> {
  let answer: ApiAnswer;
  try {
    const response = await fetch(`${baseUrl}${urlPath}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await response.text();
    const retryAfter = Number(response.headers.get('retry-after'));
    answer = {
      status: response.status,
      body: text === '' ? undefined : parseJson(text),
      retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
    };
  } catch {
    answer = { status: 0, body: undefined, retryAfterMs: undefined };
  }
  const bucket = `${method} ${route} ${answer.status === 0 ? 'no-answer' : answer.status}`;
  apiAnswers.set(bucket, (apiAnswers.get(bucket) ?? 0) + 1);
  return answer;
}

/** Worth another try: no answer, a timeout, rate limiting, or Temporal away (503) while it restarts. */
function isTransient(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

/** Repeats `attempt` while its answer is transient, with capped backoff, for at most `budgetMs`. */
async function withRetries(budgetMs: number, attempt: () => Promise<ApiAnswer>): Promise<{ answer: ApiAnswer; tries: number }> {
  const deadline = Date.now() + budgetMs;
  let backoffMs = 250;
  for (let tries = 1; ; tries++) {
    const answer = await attempt();
    const waitMs = Math.min(answer.retryAfterMs ?? backoffMs, 3_000);
    if (!isTransient(answer.status) || tries >= 500 || Date.now() + waitMs > deadline || stopping) return { answer, tries };
    await sleep(waitMs);
    backoffMs = Math.min(backoffMs * 2, 2_000);
  }
}

function asTaskView(body: unknown): TaskView | undefined {
  if (!isRecord(body) || typeof body.id !== 'string' || typeof body.status !== 'string') return undefined;
  return body as unknown as TaskView;
}

const CREATE_BUDGET_MS = 120_000;
const CANCEL_BUDGET_MS = 90_000;

/** Creates the task with its Idempotency-Key, retrying through outages with the very same body. */
async function createTask(baseUrl: string, task: SoakTask): Promise<void> {
  task.sentAt = Date.now();
  const { answer, tries } = await withRetries(CREATE_BUDGET_MS, () =>
    callApi(baseUrl, 'POST', '/v1/tasks', '/v1/tasks', task.body, { 'idempotency-key': task.key }),
  );
  task.createTries = tries;
  const id = isRecord(answer.body) && typeof answer.body.id === 'string' ? answer.body.id : undefined;
  if ((answer.status === 202 || answer.status === 200) && id !== undefined) {
    task.id = id;
    task.idsSeen.add(id);
    if (answer.status === 200) task.repeatAnswers++;
    return;
  }
  task.createError = `gave up after ${tries} tries: ${answer.status} ${JSON.stringify(answer.body)}`;
}

/** Cancels the task, retrying through outages; 409 means it had already ended. */
async function cancelTask(baseUrl: string, task: SoakTask): Promise<void> {
  const urlPath = `/v1/tasks/${task.id}/cancel`;
  const { answer } = await withRetries(CANCEL_BUDGET_MS, () =>
    callApi(baseUrl, 'POST', '/v1/tasks/:id/cancel', urlPath, { reason: 'soak test' }),
  );
  if (answer.status === 202) task.cancelAcceptedAt = Date.now();
  task.cancel =
    answer.status === 202 ? 'accepted' : answer.status === 409 ? 'already-ended' : answer.status === 404 ? 'not-found' : 'gave-up';
}

async function readTask(baseUrl: string, id: string): Promise<TaskView | undefined> {
  const answer = await callApi(baseUrl, 'GET', '/v1/tasks/:id', `/v1/tasks/${id}`);
  return answer.status === 200 ? asTaskView(answer.body) : undefined;
}

/** Every task id the list endpoint knows (our dev server holds only this run's tasks). */
async function listTaskIds(baseUrl: string): Promise<Set<string> | undefined> {
  const ids = new Set<string>();
  let cursor: string | null = null;
  for (let page = 0; page < 1_000; page++) {
    const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const { answer } = await withRetries(30_000, () => callApi(baseUrl, 'GET', '/v1/tasks', `/v1/tasks?limit=100${query}`));
    if (answer.status !== 200 || !isRecord(answer.body) || !Array.isArray(answer.body.tasks)) return undefined;
    for (const item of answer.body.tasks) {
      const view = asTaskView(item);
      if (view !== undefined) ids.add(view.id);
    }
    cursor = typeof answer.body.nextCursor === 'string' ? answer.body.nextCursor : null;
    if (cursor === null) return ids;
  }
  return ids;
}

// ─── processes: Temporal dev server and workers ─────────────────────────────────────────────────

interface FaultEvent {
  at: string;
  elapsedSec: number;
  fault: 'worker-sigterm' | 'worker-sigkill' | 'server-kill' | 'worker-died';
  detail: string;
}

const faults: FaultEvent[] = [];

function recordFault(fault: FaultEvent['fault'], detail: string): void {
  faults.push({ at: new Date().toISOString(), elapsedSec: Math.round((Date.now() - T0) / 100) / 10, fault, detail });
  log(`FAULT ${fault}: ${detail}`);
}

/** The dev server on one port and one SQLite file, so a restart finds every task again. */
class TemporalServer {
  private constructor(
    private server: DevServer,
    private readonly port: number,
    private readonly dbFile: string,
  ) {}

  static async start(dbFile: string): Promise<TemporalServer> {
    const port = await freePort();
    return new TemporalServer(await TemporalServer.boot(port, dbFile), port, dbFile);
  }

  private static boot(port: number, dbFile: string): Promise<DevServer> {
    return DevServer.start({ port, uiPort: null, namespace: 'default', dbFile });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** kill -9, as a crash would, then the same server again after `downMs`. */
  async crashAndRestart(downMs: number): Promise<void> {
    const killedAt = Date.now();
    await this.server.kill();
    recordFault('server-kill', `kill -9 Temporal dev server (pid ${this.server.pid}); restarting in ${downMs} ms`);
    await sleep(downMs);
    for (let attempt = 1; ; attempt++) {
      try {
        this.server = await TemporalServer.boot(this.port, this.dbFile);
        log(`Temporal dev server back (pid ${this.server.pid}) after ${((Date.now() - killedAt) / 1000).toFixed(1)} s down`);
        return;
      } catch (err) {
        if (attempt >= 5) throw err;
        log(`Temporal dev server restart ${attempt} failed (${(err as Error).message.split('\n')[0]}); retrying`);
        await sleep(2_000);
      }
    }
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}

/**
 * `worker-main` processes in fixed slots. A worker we did not stop on purpose that exits is itself
 * a finding (recorded as a fault) and is replaced, a bounded number of times.
 */
class WorkerPool {
  private readonly slots: Started[] = [];
  private readonly stoppedOnPurpose = new WeakSet<Started>();
  private closing = false;
  private unexpectedExits = 0;
  private restarts = 0;

  constructor(
    private readonly env: Record<string, string>,
    private readonly size: number,
  ) {}

  start(): void {
    for (let slot = 0; slot < this.size; slot++) this.slots[slot] = this.spawn(slot);
  }

  get alive(): number {
    return this.slots.filter((worker) => worker.child.exitCode === null && worker.child.signalCode === null).length;
  }

  /** Stops one worker (taking turns across slots) with `signal` and starts its replacement at once. */
  async restartOne(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const slot = this.restarts++ % this.size;
    const old = this.slots[slot];
    if (old === undefined) return;
    this.stoppedOnPurpose.add(old);
    recordFault(signal === 'SIGTERM' ? 'worker-sigterm' : 'worker-sigkill', `${signal} worker ${slot} (pid ${old.child.pid}), replacement starting`);
    const stoppingAt = Date.now();
    const exited = old.stop(signal);
    // Like a rolling deploy: the replacement comes up while the old one drains.
    this.slots[slot] = this.spawn(slot);
    // worker-main waits at most ASYNCQUEUE_WORKER_SHUTDOWN_GRACE (5 s) for in-flight calls.
    const code = await within(exited, 20_000);
    if (code === undefined && old.child.exitCode === null) {
      log(`worker ${slot} (pid ${old.child.pid}) still running 20 s after ${signal}: SIGKILL`);
      await old.stop('SIGKILL');
    }
    log(`worker ${slot} (pid ${old.child.pid}) exited: code ${old.child.exitCode}, signal ${old.child.signalCode}, after ${Date.now() - stoppingAt} ms`);
  }

  async closeAll(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((worker) => worker.stop('SIGKILL')));
  }

  private spawn(slot: number): Started {
    const worker = runEntry('worker-main', this.env);
    void worker.exited.then((code) => {
      if (this.closing || this.stoppedOnPurpose.has(worker)) return;
      this.unexpectedExits++;
      const tail = worker.output().trim().split('\n').slice(-5).join(' | ');
      recordFault('worker-died', `worker ${slot} (pid ${worker.child.pid}) exited by itself: code ${code}, signal ${worker.child.signalCode}; output: ${tail}`);
      if (this.unexpectedExits > 30) return; // something is badly wrong; the books will say so
      setTimeout(() => {
        if (!this.closing && this.slots[slot] === worker) this.slots[slot] = this.spawn(slot);
      }, 1_000);
    });
    return worker;
  }
}

// ─── the run ────────────────────────────────────────────────────────────────────────────────────

/** Set on Ctrl-C or at the end: loops stop starting new work. */
let stopping = false;

interface Running {
  options: SoakOptions;
  /** Two streams, so the task mix and the fault timings each replay from `--seed`. */
  rng: Rng;
  faultRng: Rng;
  runId: string;
  baseUrl: string;
  receiver: Receiver;
  traffic: Traffic;
  server: TemporalServer;
  workers: WorkerPool;
  tasks: SoakTask[];
  /** Creates and cancels still in flight. */
  inFlight: Set<Promise<void>>;
}

/** Open loop: tasks start at a fixed rate whatever the system does; slow answers do not slow the load. */
async function generateLoad(run: Running, untilMs: number): Promise<void> {
  const intervalMs = 1000 / run.options.rate;
  const startedAt = Date.now();
  const maxTasks = Math.ceil(((untilMs - startedAt) / 1000) * run.options.rate);
  for (let seq = 0; seq < maxTasks && !stopping; seq++) {
    const dueAt = startedAt + seq * intervalMs;
    if (dueAt >= untilMs) break;
    await sleep(dueAt - Date.now());
    const task = newTask(seq, run.runId, run.rng, (p) => run.receiver.url(p));
    run.tasks.push(task);
    // A cancelled-kind task gets its cancel a second or two after the create is acknowledged.
    const cancelAfterMs = task.kind === 'cancelled' ? run.rng.int(1_000, 2_000) : 0;
    const work = createTask(run.baseUrl, task)
      .then(async () => {
        if (task.kind !== 'cancelled' || task.id === undefined || stopping) return;
        await sleep(cancelAfterMs);
        await cancelTask(run.baseUrl, task);
      })
      .catch((err: unknown) => log(`task ${task.key}: ${String(err)}`));
    run.inFlight.add(work);
    void work.finally(() => run.inFlight.delete(work));
  }
}

/**
 * Every ~45–60 s one worker restarts (SIGTERM and SIGKILL in turn); every ~2–3 min the Temporal
 * server is kill -9'd and restarted ~2 s later. The first of each comes no later than 40 % / 60 %
 * into the run, so that a short run (`--minutes 1`) exercises both.
 */
async function injectFaults(run: Running, untilMs: number): Promise<void> {
  const rng = run.faultRng;
  const durationMs = untilMs - Date.now();
  let nextWorkerAt = Date.now() + Math.min(rng.between(45_000, 60_000), durationMs * 0.4);
  let nextServerAt = Date.now() + Math.min(rng.between(120_000, 180_000), durationMs * 0.6);
  let workerFaults = 0;
  for (let round = 0; round < 10_000 && !stopping; round++) {
    const dueAt = Math.min(nextWorkerAt, nextServerAt);
    if (dueAt >= untilMs) return;
    await sleep(Math.min(dueAt - Date.now(), 1_000));
    if (Date.now() < dueAt || stopping) continue;
    if (dueAt === nextServerAt) {
      await run.server.crashAndRestart(rng.int(1_500, 2_500));
      nextServerAt = Date.now() + rng.between(120_000, 180_000);
      // Let the system settle a little before the next worker fault.
      nextWorkerAt = Math.max(nextWorkerAt, Date.now() + 10_000);
    } else {
      await run.workers.restartOne(workerFaults++ % 2 === 0 ? 'SIGTERM' : 'SIGKILL');
      nextWorkerAt = Date.now() + rng.between(45_000, 60_000);
    }
  }
}

async function reportProgress(run: Running, untilMs: number): Promise<void> {
  while (!stopping && Date.now() < untilMs) {
    await sleep(Math.min(30_000, untilMs - Date.now()));
    const created = run.tasks.filter((task) => task.id !== undefined).length;
    log(
      `progress: ${run.tasks.length} started, ${created} created, ${run.inFlight.size} creates/cancels in flight, ` +
        `${run.traffic.callbackCount} callback and ${run.traffic.webhookCount} webhook requests received, ${run.workers.alive} workers alive`,
    );
  }
}

function isSettled(view: TaskView | undefined): boolean {
  return view !== undefined && ENDINGS.includes(view.status) && (view.webhook === undefined || view.webhook.status !== 'pending');
}

/** Polls every created task until it has ended and its webhook settled, or the time is up. */
async function drain(run: Running, deadlineMs: number): Promise<void> {
  let open = run.tasks.filter((task) => task.id !== undefined);
  for (let sweep = 1; open.length > 0 && Date.now() < deadlineMs && !stopping; sweep++) {
    await forEachLimit(open, 16, async (task) => {
      const view = await readTask(run.baseUrl, task.id as string);
      if (view !== undefined) task.final = view;
    });
    open = open.filter((task) => !isSettled(task.final));
    const notEnded = open.filter((task) => task.final === undefined || !ENDINGS.includes(task.final.status)).length;
    log(`drain sweep ${sweep}: ${open.length} not settled (${notEnded} not ended, ${open.length - notEnded} webhook pending)`);
    if (open.length > 0) await sleep(2_000);
  }
}

// ─── the books ──────────────────────────────────────────────────────────────────────────────────

interface KindBooks {
  created: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  stuck: number;
  mismatches: number;
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
}

interface TaskProblem {
  taskId: string | undefined;
  key: string;
  kind: Kind;
  createStartedAt: string;
  problem: string;
  /** Faults injected from 5 s before the create until the task ended: the likely culprits. */
  faultsNearby: string[];
  view: TaskView | undefined;
}

function faultsAround(task: SoakTask): string[] {
  const from = task.sentAt - 5_000;
  const endedAt = task.final !== undefined ? Date.parse(task.final.updatedAt) : Number.NaN;
  const to = Number.isFinite(endedAt) ? endedAt + 1_000 : task.sentAt + 60_000;
  return faults.filter((f) => Date.parse(f.at) >= from && Date.parse(f.at) <= to).map((f) => `${f.at} ${f.fault}: ${f.detail}`);
}

/** Why this task's end is wrong for its kind, or undefined when it is right. */
function outcomeProblem(task: SoakTask, traffic: Traffic): string | undefined {
  const view = task.final;
  if (view === undefined || !ENDINGS.includes(view.status)) return undefined; // counted as stuck
  const expected = KINDS[task.kind].expect;
  const failedAfterCancel = failedAfterAcceptedCancel(task);
  if (failedAfterCancel !== undefined) return failedAfterCancel;
  // A cancel that reaches a task that has already ended is "late", not wrong; counted separately.
  const cancelLate = task.kind === 'cancelled' && view.status !== 'cancelled';
  if (!cancelLate && view.status !== expected) {
    return `expected ${expected}, ended ${view.status} (${view.error?.code ?? 'no error'}: ${view.error?.message ?? ''})`;
  }
  if (expected === 'succeeded' && (!isRecord(view.result) || view.result.marker !== task.body.payload.marker)) {
    return `result does not echo marker ${task.body.payload.marker}: ${JSON.stringify(view.result)}`;
  }
  if (task.kind === 'failing' && (view.error?.code !== 'callback_http_status' || view.error.statusCode !== 422)) {
    return `failed with ${JSON.stringify(view.error)}, expected callback_http_status 422`;
  }
  const told = traffic.delivered(view.id).map((hit) => hit.status);
  if (told.some((status) => status !== view.status)) return `webhook said ${told.join(',')} but the task is ${view.status}`;
  return undefined;
}

/**
 * A cancelled-kind task whose cancel was accepted (202) and which only failed afterwards: the
 * signal was in its history before it ended, and its callback hangs, so only the cancel could end
 * it. Failing it instead breaks the cancel contract (the webhook says task.failed).
 */
function failedAfterAcceptedCancel(task: SoakTask): string | undefined {
  const view = task.final;
  if (task.kind !== 'cancelled' || view?.status !== 'failed' || task.cancelAcceptedAt === undefined) return undefined;
  const endedAt = Date.parse(view.updatedAt);
  if (!(endedAt >= task.cancelAcceptedAt)) return undefined;
  return (
    `cancel accepted (202) at ${new Date(task.cancelAcceptedAt).toISOString()}, yet the task ended failed at ${view.updatedAt} ` +
    `after ${view.attempts} of ${view.retries + 1} attempts (${view.error?.code}: ${view.error?.message})`
  );
}

function computeBooks(run: Running, timing: { loadSec: number; drainSec: number; totalSec: number }) {
  const { tasks, traffic } = run;
  const created = tasks.filter((task) => task.id !== undefined);
  const byStatus = (status: Ending) => created.filter((task) => task.final?.status === status).length;
  const succeeded = byStatus('succeeded');
  const failed = byStatus('failed');
  const cancelled = byStatus('cancelled');
  const stuckTasks = created.filter((task) => task.final === undefined || !ENDINGS.includes(task.final.status));
  const problems: TaskProblem[] = [];
  const problem = (task: SoakTask, text: string): void => {
    problems.push({
      taskId: task.id,
      key: task.key,
      kind: task.kind,
      createStartedAt: new Date(task.sentAt).toISOString(),
      problem: text,
      faultsNearby: faultsAround(task),
      view: task.final,
    });
  };

  const mismatched = new Set<SoakTask>();
  for (const task of created) {
    const text = outcomeProblem(task, traffic);
    if (text !== undefined) {
      mismatched.add(task);
      problem(task, `outcome: ${text}`);
    }
  }
  for (const task of stuckTasks) problem(task, `stuck: ${task.final?.status ?? 'never read'}`);
  const cancelLate = created.filter(
    (task) => task.kind === 'cancelled' && task.final !== undefined && ['succeeded', 'failed'].includes(task.final.status) && !mismatched.has(task),
  );
  for (const task of cancelLate) {
    const acceptedAt = task.cancelAcceptedAt === undefined ? '' : ` at ${new Date(task.cancelAcceptedAt).toISOString()}`;
    problem(task, `cancel arrived late (cancel answer: ${task.cancel ?? 'not sent'}${acceptedAt}; ended ${task.final?.updatedAt}) — allowed`);
  }

  // Delivered = AsyncQueue says so AND the receiver really got (and accepted) it.
  const undelivered = created.filter((task) => task.final?.webhook?.status !== 'delivered' || traffic.delivered(task.id as string).length === 0);
  for (const task of undelivered) {
    if (!stuckTasks.includes(task)) {
      problem(task, `webhook not delivered: view says ${task.final?.webhook?.status}, receiver accepted ${traffic.delivered(task.id as string).length}`);
    }
  }
  const { duplicates: webhookDuplicates, badSignatures } = webhookStats(traffic);
  const { extra: callbackExtra, tasks: callbackExtraTasks } = callbackDuplicates(created, traffic);
  const latency = (subset: SoakTask[]): number[] => webhookLatencies(subset, traffic);
  const allLatencies = latency(created);

  const byKind = Object.fromEntries(
    KIND_NAMES.map((kind): [Kind, KindBooks] => {
      const ofKind = created.filter((task) => task.kind === kind);
      const latencies = latency(ofKind);
      return [
        kind,
        {
          created: ofKind.length,
          succeeded: ofKind.filter((task) => task.final?.status === 'succeeded').length,
          failed: ofKind.filter((task) => task.final?.status === 'failed').length,
          cancelled: ofKind.filter((task) => task.final?.status === 'cancelled').length,
          stuck: ofKind.filter((task) => stuckTasks.includes(task)).length,
          mismatches: ofKind.filter((task) => mismatched.has(task)).length,
          latencyP50Ms: percentile(latencies, 50),
          latencyP99Ms: percentile(latencies, 99),
        },
      ];
    }),
  ) as Record<Kind, KindBooks>;

  const createGaveUp = tasks.filter((task) => task.id === undefined);
  for (const task of createGaveUp) problem(task, `create: ${task.createError}`);
  const keyReuse = tasks.filter((task) => task.idsSeen.size > 1).length;
  const idCount = new Set(created.map((task) => task.id)).size;

  const books = {
    run: {
      runId: run.runId,
      seed: run.options.seed,
      minutes: run.options.minutes,
      rate: run.options.rate,
      workers: run.options.workers,
      loadSec: timing.loadSec,
      drainSec: timing.drainSec,
      totalSec: timing.totalSec,
    },
    started: tasks.length,
    created: created.length,
    createGaveUp: createGaveUp.length,
    createRetried: tasks.filter((task) => task.createTries > 1).length,
    idempotentRepeats: tasks.reduce((sum, task) => sum + task.repeatAnswers, 0),
    /** One key named two task ids, or two keys one id: the Idempotency-Key promise broken. */
    idempotencyViolations: keyReuse + (created.length - idCount),
    succeeded,
    failed,
    cancelled,
    balanced: created.length === succeeded + failed + cancelled,
    stuck: stuckTasks.length,
    outcomeMismatches: mismatched.size,
    cancelArrivedLate: cancelLate.length,
    cancelAnswers: countBy(created.filter((task) => task.kind === 'cancelled').map((task) => task.cancel ?? 'not-sent')),
    webhooks: {
      expected: created.length,
      delivered: created.length - undelivered.length,
      duplicates: webhookDuplicates,
      firstDeliveryRefused: created.filter((task) => task.body.webhookUrl.endsWith('/hook/flaky')).length,
      badSignatures,
    },
    callbacks: { requests: traffic.callbackCount, duplicates: callbackExtra, tasksWithDuplicates: callbackExtraTasks },
    faults: {
      workerSigterm: faults.filter((f) => f.fault === 'worker-sigterm').length,
      workerSigkill: faults.filter((f) => f.fault === 'worker-sigkill').length,
      serverKill: faults.filter((f) => f.fault === 'server-kill').length,
      workerDiedUnexpectedly: faults.filter((f) => f.fault === 'worker-died').length,
      log: faults,
    },
    latencyMs: { p50: percentile(allLatencies, 50), p99: percentile(allLatencies, 99), max: allLatencies[allLatencies.length - 1] ?? null },
    byKind,
    listed: undefined as { listed: number; phantom: number; missing: number } | undefined,
    apiAnswers: Object.fromEntries([...apiAnswers.entries()].sort()),
    apiErrors,
    problems: problems.slice(0, 100),
    problemsOmitted: Math.max(0, problems.length - 100),
    ok: false,
  };
  books.ok =
    books.balanced &&
    books.stuck === 0 &&
    books.outcomeMismatches === 0 &&
    books.createGaveUp === 0 &&
    books.idempotencyViolations === 0 &&
    books.webhooks.delivered === books.webhooks.expected &&
    books.webhooks.badSignatures === 0 &&
    books.apiErrors.length === 0;
  return books;
}

type Books = ReturnType<typeof computeBooks>;

/** Webhook messages accepted more than once (at-least-once delivery: allowed), and forged ones. */
function webhookStats(traffic: Traffic): { duplicates: number; badSignatures: number } {
  const accepted = new Map<string, number>();
  let badSignatures = 0;
  for (const hits of traffic.webhooks.values()) {
    for (const hit of hits) {
      if (!hit.signatureOk) badSignatures++;
      if (hit.answered < 300) accepted.set(hit.messageId, (accepted.get(hit.messageId) ?? 0) + 1);
    }
  }
  const duplicates = [...accepted.values()].reduce((sum, count) => sum + Math.max(0, count - 1), 0);
  return { duplicates, badSignatures };
}

/** Callback requests beyond what each kind needs: calls repeated because a kill cut them off. */
function callbackDuplicates(created: readonly SoakTask[], traffic: Traffic): { extra: number; tasks: number } {
  let extra = 0;
  let tasks = 0;
  for (const task of created) {
    const beyond = (traffic.callbacks.get(task.id as string)?.length ?? 0) - KINDS[task.kind].expectedCallbacks;
    if (beyond > 0) {
      extra += beyond;
      tasks++;
    }
  }
  return { extra, tasks };
}

/** Create (first request sent) → first accepted webhook, sorted, for the tasks that have one. */
function webhookLatencies(tasks: readonly SoakTask[], traffic: Traffic): number[] {
  return tasks
    .map((task) => {
      const first = traffic.delivered(task.id as string)[0];
      return first === undefined ? undefined : first.at - task.sentAt;
    })
    .filter((ms): ms is number => ms !== undefined)
    .sort((a, b) => a - b);
}

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

function seconds(ms: number | null): string {
  return ms === null ? '—' : `${(ms / 1000).toFixed(2)} s`;
}

function printBooks(books: Books): void {
  const rows: [string, string][] = [
    ['created', `${books.created}  (of ${books.started} started; gave up creating ${books.createGaveUp}; retried ${books.createRetried}; idempotent 200s ${books.idempotentRepeats}; key violations ${books.idempotencyViolations})`],
    ['succeeded / failed / cancelled', `${books.succeeded} / ${books.failed} / ${books.cancelled}`],
    ['books balance', books.balanced ? `yes: ${books.created} = ${books.succeeded} + ${books.failed} + ${books.cancelled}` : `NO: ${books.created} ≠ ${books.succeeded + books.failed + books.cancelled}`],
    ['stuck (not ended)', String(books.stuck)],
    ['outcome mismatches', String(books.outcomeMismatches)],
    ['cancel arrived late', `${books.cancelArrivedLate}  (cancel answers: ${JSON.stringify(books.cancelAnswers)})`],
    ['webhooks delivered / expected', `${books.webhooks.delivered} / ${books.webhooks.expected}  (${books.webhooks.firstDeliveryRefused} refused once on purpose; bad signatures ${books.webhooks.badSignatures})`],
    ['webhook duplicates (same id)', String(books.webhooks.duplicates)],
    ['callback duplicates', `${books.callbacks.duplicates} extra requests on ${books.callbacks.tasksWithDuplicates} tasks (of ${books.callbacks.requests})`],
    ['faults injected', `${books.faults.workerSigterm} worker SIGTERM, ${books.faults.workerSigkill} worker SIGKILL, ${books.faults.serverKill} server kill -9; ${books.faults.workerDiedUnexpectedly} workers died by themselves`],
    ['create → webhook p50 / p99', `${seconds(books.latencyMs.p50)} / ${seconds(books.latencyMs.p99)}  (max ${seconds(books.latencyMs.max)})`],
    ['unexpected API errors', `${books.apiErrors.length}${books.apiErrors.length > 0 ? `  (first: ${books.apiErrors[0]?.type}: ${books.apiErrors[0]?.message})` : ''}  answers: ${JSON.stringify(books.apiAnswers)}`],
    ['listed by GET /v1/tasks', books.listed === undefined ? 'could not list' : `${books.listed.listed} (phantom ${books.listed.phantom}, missing ${books.listed.missing})`],
    ['run', `${books.run.minutes} min at ${books.run.rate}/s, ${books.run.workers} workers, seed ${books.run.seed}; load ${books.run.loadSec} s, drain ${books.run.drainSec} s, total ${books.run.totalSec} s`],
    ['RESULT', books.ok ? 'PASS' : 'FAIL'],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = ['', 'AsyncQueue soak — the books', '─'.repeat(100), ...rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`), ''];
  const head = ['kind', 'created', 'succeeded', 'failed', 'cancelled', 'stuck', 'mismatch', 'p50', 'p99'];
  const table = [head, ...KIND_NAMES.map((kind) => {
    const k = books.byKind[kind];
    return [kind, k.created, k.succeeded, k.failed, k.cancelled, k.stuck, k.mismatches, seconds(k.latencyP50Ms), seconds(k.latencyP99Ms)].map(String);
  })];
  const widths = head.map((_, column) => Math.max(...table.map((row) => (row[column] ?? '').length)));
  for (const row of table) lines.push(row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  '));
  lines.push('─'.repeat(100));
  for (const item of books.problems.slice(0, 20)) {
    lines.push(`problem: ${item.kind} task ${item.taskId ?? '(none)'} (created ${item.createStartedAt}): ${item.problem}`);
    for (const fault of item.faultsNearby) lines.push(`         near fault ${fault}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

// ─── setup, teardown, main ──────────────────────────────────────────────────────────────────────

const SIGNING_SECRET = `whsec_${Buffer.from('asyncqueue-soak-fixed-signing-secret!').toString('base64')}`;

function serviceEnv(temporalAddress: string, taskQueue: string, dataDir: string): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: temporalAddress,
    ASYNCQUEUE_TASK_QUEUE: taskQueue,
    ASYNCQUEUE_DATA_DIR: dataDir,
    ASYNCQUEUE_SIGNING_SECRET: SIGNING_SECRET,
    ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'true',
    // Short schedules, so that faults are recovered from in seconds rather than minutes.
    ASYNCQUEUE_RETRY_INITIAL_INTERVAL: '0.5',
    ASYNCQUEUE_RETRY_MAX_INTERVAL: '5',
    ASYNCQUEUE_HEARTBEAT_TIMEOUT: '3',
    ASYNCQUEUE_WEBHOOK_RETRY_INITIAL_INTERVAL: '0.5',
    ASYNCQUEUE_WEBHOOK_RETRY_MAX_INTERVAL: '5',
    ASYNCQUEUE_WORKER_SHUTDOWN_GRACE: '5',
    ASYNCQUEUE_RATE_LIMIT: '0',
    ASYNCQUEUE_TEMPORAL_RPC_TIMEOUT: '5',
    LOG_LEVEL: 'warn',
  };
}

/** Everything the run started, so Ctrl-C and the end tear down the same way. */
const resources: {
  tmpDir?: string;
  server?: TemporalServer;
  workers?: WorkerPool;
  app?: FastifyInstance;
  receiver?: Receiver;
} = {};
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    stopping = true;
    const step = async (what: string, action: (() => Promise<unknown>) | undefined): Promise<void> => {
      if (action === undefined) return;
      try {
        if ((await within(action().then(() => true), 20_000)) === undefined) log(`cleanup: ${what} did not finish in 20 s`);
      } catch (err) {
        log(`cleanup: ${what} failed: ${String(err)}`);
      }
    };
    const { workers, app, receiver, server, tmpDir } = resources;
    await step('workers', workers && (() => workers.closeAll()));
    await step('API', app && (() => app.close()));
    await step('receiver', receiver && (() => receiver.close()));
    await step('Temporal dev server', server && (() => server.stop()));
    await step('temp folder', tmpDir === undefined ? undefined : () => rm(tmpDir, { recursive: true, force: true }));
  })();
  return cleaning;
}

async function setUp(options: SoakOptions): Promise<Running> {
  const runId = randomUUID().slice(0, 8);
  resources.tmpDir = await mkdtemp(path.join(tmpdir(), 'asyncqueue-soak-'));
  const dbFile = path.join(resources.tmpDir, 'temporal.db');
  log(`run ${runId}: seed ${options.seed}, ${options.minutes} min at ${options.rate} tasks/s, ${options.workers} workers; data in ${resources.tmpDir}`);

  const server = await TemporalServer.start(dbFile);
  resources.server = server;
  log(`Temporal dev server at ${server.address} (db ${dbFile})`);

  const env = serviceEnv(server.address, `soak-${runId}`, resources.tmpDir);
  const workers = new WorkerPool(env, options.workers);
  resources.workers = workers;
  workers.start();

  const receiver = await Receiver.start('127.0.0.1');
  resources.receiver = receiver;
  const traffic = new Traffic(SIGNING_SECRET);
  traffic.install(receiver);

  const config = loadConfig({ ...env, HOST: '127.0.0.1', PORT: '0' });
  const app = await buildApp({ config, target: { embeddedAddress: server.address }, logger: { level: 'error', stream: apiLogStream } });
  resources.app = app;
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  log(`API at ${baseUrl}, receiver at ${receiver.origin}`);

  const run: Running = {
    options,
    rng: new Rng(options.seed),
    faultRng: new Rng(options.seed ^ 0x5eed),
    runId,
    baseUrl,
    receiver,
    traffic,
    server,
    workers,
    tasks: [],
    inFlight: new Set(),
  };
  await waitUntilWorking(run);
  return run;
}

/** One task end to end before the clock starts: workers polling, API and receiver wired up. */
async function waitUntilWorking(run: Running): Promise<void> {
  const probe: CreateBody = {
    callbackUrl: run.receiver.url('/warmup'),
    payload: { marker: 'warmup', kind: 'succeeding' },
    webhookUrl: run.receiver.url('/warmup-hook'),
    retries: 3,
    timeout: 10,
    delay: 0,
  };
  const { answer } = await withRetries(60_000, () => callApi(run.baseUrl, 'POST', '/v1/tasks', '/v1/tasks', probe));
  const id = isRecord(answer.body) && typeof answer.body.id === 'string' ? answer.body.id : undefined;
  if (id === undefined) throw new Error(`warm-up create failed: ${answer.status} ${JSON.stringify(answer.body)}`);
  for (let poll = 0; poll < 240; poll++) {
    const view = await readTask(run.baseUrl, id);
    if (isSettled(view)) {
      log(`warm-up task ${id} ${view?.status}; starting the load`);
      return;
    }
    await sleep(500);
  }
  throw new Error(`warm-up task ${id} did not finish within 120 s: are the workers running?`);
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const run = await setUp(options);
  // The warm-up is not part of the books: the list check below must not count it as a phantom.
  const warmupIds = await listTaskIds(run.baseUrl);

  const loadStart = Date.now();
  const loadUntil = loadStart + options.minutes * 60_000;
  await Promise.all([generateLoad(run, loadUntil), injectFaults(run, loadUntil), reportProgress(run, loadUntil)]);
  log(`load done: ${run.tasks.length} tasks started; waiting for ${run.inFlight.size} creates/cancels still in flight`);
  // Bounded: each create or cancel gives up after its own budget.
  await within(Promise.allSettled([...run.inFlight]), CREATE_BUDGET_MS + CANCEL_BUDGET_MS + 10_000);
  const loadSec = Math.round((Date.now() - loadStart) / 1000);

  const drainStart = Date.now();
  log(`draining (no more faults) for at most ${options.drainMinutes} min`);
  await drain(run, drainStart + options.drainMinutes * 60_000);
  const drainSec = Math.round((Date.now() - drainStart) / 1000);

  const books = computeBooks(run, { loadSec, drainSec, totalSec: Math.round((Date.now() - T0) / 1000) });
  const listed = await listTaskIds(run.baseUrl);
  if (listed !== undefined) {
    const ours = new Set(run.tasks.map((task) => task.id).filter((id): id is string => id !== undefined));
    const extra = [...listed].filter((id) => !ours.has(id) && !(warmupIds?.has(id) ?? false));
    books.listed = { listed: listed.size - (warmupIds?.size ?? 0), phantom: extra.length, missing: [...ours].filter((id) => !listed.has(id)).length };
    // A task nobody created (two tasks from one key, say) breaks the books as surely as a lost one.
    if (extra.length > 0) books.ok = false;
  }
  printBooks(books);
  const { problems, ...summary } = books;
  process.stdout.write(`${JSON.stringify({ ...summary, faults: { ...summary.faults, log: undefined }, problems: problems.length })}\n`);
  await writeFile(options.out, `${JSON.stringify(books, null, 2)}\n`);
  log(`full report (with every fault and problem) in ${options.out}`);
  return books.ok ? 0 : 1;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${signal}: stopping and cleaning up (again to exit at once)`);
    void cleanup().finally(() => process.exit(130));
  });
}

main()
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  })
  .catch(async (err: unknown) => {
    log(`soak aborted: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await cleanup();
    process.exit(2);
  });
