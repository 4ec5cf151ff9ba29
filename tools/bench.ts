/**
 * `npm run bench [-- --quick] [--big] [--out dir]`: AsyncQueue's throughput, latency and held-call
 * capacity on this machine, measured against the Temporal engine's own limit.
 *
 * It starts a Temporal dev server in memory (or uses TEMPORAL_ADDRESS), the API and ONE worker as
 * child processes (`api-main`, `worker-main`), and loopback callback and webhook receivers in this
 * process. Then, in order:
 *
 *  1. AsyncQueue ramp: POST /v1/tasks at fixed arrival rates (open model: requests are scheduled by
 *     the wall clock, not by answers, so queueing shows as latency), rate by rate until a rate is
 *     not sustainable (completions more than 5 % behind arrivals, any error, or e2e p99 exploding).
 *     Per rate: create latency (scheduled send → 202), end-to-end latency (scheduled send → webhook
 *     received), completions/s, errors, and CPU seconds and peak RSS of API, worker, Temporal server
 *     and this process, sampled from /proc every 250 ms.
 *  2. Concurrency: N callbacks held open ~30 s at once on the one worker (worker RSS, dispatch
 *     latency) and the time a cancel takes to reach a held call (cancel sent → the receiver sees
 *     the connection close) while all the others are still held.
 *  3. Baseline: the API and worker are stopped; a raw @temporalio/client in this process starts a
 *     workflow of the same shape with no-op activities (tools/bench-workflows/baseline.ts) on its own
 *     task queue, run by an in-process worker, through the same ramp. Its highest sustainable rate is
 *     the engine's limit on this machine; AsyncQueue is reported as a share of it. (Run after, not
 *     beside, AsyncQueue's ramp: both would compete for the same cores.)
 *
 * Results go to `<out>/bench-<timestamp>.json` and `.md` (default out: `bench-results/` in the
 * repository, which gets its own `.gitignore` so nothing there is ever committed); the markdown is
 * printed too. All traffic stays on 127.0.0.1. Ctrl-C stops every child and the server.
 *
 * Options: --quick (< 2 min: short steps, N = 100 only), --big (adds N = 5000 held calls),
 * --held 100,5000 (these held-call runs instead), --heartbeat-timeout S (ASYNCQUEUE_HEARTBEAT_TIMEOUT), --out DIR, --rates 10,20,40 (override the ramp), --step-seconds S, --skip asyncqueue,baseline,concurrency,
 * --cpu-prof DIR (the API and worker write V8 CPU profiles there when they stop; open them in Chrome
 * DevTools or speedscope to see where a task's CPU goes).
 * Scale-out: --apis N and --workers N run the AsyncQueue ramp with N API processes (requests spread
 * round-robin) and N workers on one task queue; --callback-ms MS makes each ramp callback take MS
 * before answering and --worker-slots N caps each worker's concurrent calls, so call slots, not CPU,
 * can be made the limit (with --workers > 1 the held-call runs are skipped: they measure one worker).
 * --worker-nice N runs the workers at that nice value (ASYNCQUEUE_WORKER_NICE): on this one host,
 * the API then gets a core first, as it would on a host of its own. The baseline's worker shares
 * its process with the client, so it has no such setting.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { Pool } from 'undici';
import { Context } from '@temporalio/activity';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { loadConfig } from '../src/config.js';
import { DevServer, freePort } from '../src/dev-server.js';
import { TASK_MEMO_KEY, TASK_STATUS_SEARCH_ATTRIBUTE } from '../workflows/task-contract.js';
import { runEntry, type Started } from '../test/support/processes.js';
import type { BaselineActivities, BaselineInput, baselineWorkflow } from './bench-workflows/baseline.js';
import { isRecord, parseJson } from './json-values.js';
import { percentile, sleep, within } from './timing.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BASELINE_WORKFLOWS = fileURLToPath(new URL('./bench-workflows/baseline.js', import.meta.url));
const CLI_SCRIPT = path.join(REPO_ROOT, 'scripts', 'temporal-cli.sh');

// ─── options ────────────────────────────────────────────────────────────────────────────────────

type Phase = 'asyncqueue' | 'baseline' | 'concurrency';

interface ConcurrencySpec {
  n: number;
  /** Callback origins (receiver ports) the held calls are spread over. */
  origins: number;
  holdMs: number;
  /** Longest arrival phase: calls are held until every one arrived, arrivals stall, or this. */
  arrivalCapMs: number;
}

interface BenchOptions {
  quick: boolean;
  big: boolean;
  out: string;
  rates: number[];
  stepMs: number;
  /** Longest wait after a step's load for its tasks to finish before the next step. */
  drainMaxMs: number;
  /** Bisection steps between the last sustainable and the first failing rate. */
  refineSteps: number;
  /** Length of the step at 80 % of the limit, in ramp steps (0: none; the nearest ramp step stands in). */
  targetLoadStepFactor: number;
  /** Each ramp stops starting steps once it has run this long. */
  rampBudgetMs: number;
  /** After the last step of a ramp: how long leftover tasks may take before they count as stuck. */
  finalDrainMs: number;
  concurrency: ConcurrencySpec[];
  skip: Set<Phase>;
  /** Whole-run budget (--quick: under two minutes); ramps shorten themselves to fit. */
  deadlineMs: number;
  /** Where the API and worker write V8 CPU profiles (--cpu-prof DIR); undefined: no profiling. */
  cpuProfileDir: string | undefined;
  /** Scale-out runs: how many API and worker processes the AsyncQueue ramp uses. */
  apis: number;
  workers: number;
  /** How long each ramp callback takes to answer (0: at once); slow callbacks make call slots the limit. */
  callbackMs: number;
  /** ASYNCQUEUE_WORKER_MAX_CONCURRENT_CALLS per worker; undefined: enough for the held-call runs. */
  workerSlots: number | undefined;
  /** ASYNCQUEUE_WORKER_NICE of the worker processes (0: same priority as the API). */
  workerNice: number;
  /** ASYNCQUEUE_HEARTBEAT_TIMEOUT for AsyncQueue, and the baseline's activities' heartbeat timeout. */
  heartbeatTimeoutMs: number;
}

const USAGE =
  'usage: node dist/tools/bench.js [--quick] [--big] [--out DIR] [--rates 10,20,40] [--step-seconds S] [--skip asyncqueue,baseline,concurrency] [--cpu-prof DIR] [--apis N] [--workers N] [--callback-ms MS] [--worker-slots N] [--worker-nice N] [--heartbeat-timeout S] [--held 100,5000]';

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      big: { type: 'boolean', default: false },
      out: { type: 'string' },
      rates: { type: 'string' },
      'step-seconds': { type: 'string' },
      skip: { type: 'string' },
      'cpu-prof': { type: 'string' },
      apis: { type: 'string' },
      workers: { type: 'string' },
      'callback-ms': { type: 'string' },
      'worker-slots': { type: 'string' },
      'worker-nice': { type: 'string' },
      'heartbeat-timeout': { type: 'string' },
      held: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const big = values.big ?? false;
  // Fine steps where a 2-core machine's limit lies; coarser beyond.
  const rates = (values.rates ?? (quick ? '10,20,30,40,60,80' : '10,15,20,25,30,35,40,50,60,80,100,120,160,200'))
    .split(',')
    .map((item) => Number(item.trim()));
  if (rates.length === 0 || rates.some((rate) => !Number.isFinite(rate) || rate <= 0 || rate > 5000)) {
    throw new Error(`--rates must be positive numbers up to 5000\n${USAGE}`);
  }
  const stepSeconds = Number(values['step-seconds'] ?? (quick ? 8 : 20));
  if (!Number.isFinite(stepSeconds) || stepSeconds < 1 || stepSeconds > 600) throw new Error(`--step-seconds must be 1..600\n${USAGE}`);
  const skip = new Set<Phase>();
  for (const item of (values.skip ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (item !== 'asyncqueue' && item !== 'baseline' && item !== 'concurrency') throw new Error(`--skip: unknown phase "${item}"\n${USAGE}`);
    skip.add(item);
  }
  const count = (name: string, raw: string | undefined, fallback: number, max: number): number => {
    const value = Number(raw ?? fallback);
    if (!Number.isInteger(value) || value < (name === 'callback-ms' || name === 'worker-nice' ? 0 : 1) || value > max) {
      throw new Error(`--${name} must be an integer up to ${max}\n${USAGE}`);
    }
    return value;
  };
  const apis = count('apis', values.apis, 1, 16);
  const workers = count('workers', values.workers, 1, 16);
  const callbackMs = count('callback-ms', values['callback-ms'], 0, 60_000);
  const workerSlots = values['worker-slots'] !== undefined ? count('worker-slots', values['worker-slots'], 1, 100_000) : undefined;
  const workerNice = count('worker-nice', values['worker-nice'], 0, 19);
  const heartbeatTimeoutMs = count('heartbeat-timeout', values['heartbeat-timeout'], DEFAULT_POLICY.heartbeatTimeoutMs / 1000, 3600) * 1000;
  // The held-call runs measure ONE worker; with more, they would measure how calls spread instead.
  if (workers > 1) skip.add('concurrency');
  const holdMs = quick ? 10_000 : 30_000;
  const arrivalCapMs = quick ? 15_000 : 120_000;
  const held = values.held?.split(',').map((item) => Number(item.trim()));
  if (held !== undefined && held.some((n) => !Number.isInteger(n) || n < 1 || n > 20_000)) throw new Error(`--held must list call counts up to 20000\n${USAGE}`);
  const concurrency: ConcurrencySpec[] = held !== undefined
    // One origin per 200 calls, as the default sizes spread them.
    ? held.map((n) => ({ n, origins: Math.max(1, Math.round(n / 200)), holdMs, arrivalCapMs: n > 1000 ? 240_000 : arrivalCapMs }))
    : quick
    ? [{ n: 100, origins: 1, holdMs, arrivalCapMs }]
    : [
        { n: 100, origins: 1, holdMs, arrivalCapMs },
        // One app endpoint (the common case) and the same load spread over 8 origins: the worker
        // keeps one keep-alive pool per origin, so the two can differ.
        { n: 1000, origins: 1, holdMs, arrivalCapMs },
        { n: 1000, origins: 8, holdMs, arrivalCapMs },
        ...(big ? [{ n: 5000, origins: 25, holdMs, arrivalCapMs: 240_000 }] : []),
      ];
  return {
    quick,
    big,
    out: path.resolve(values.out ?? path.join(REPO_ROOT, 'bench-results')),
    rates,
    stepMs: stepSeconds * 1000,
    drainMaxMs: quick ? 4_000 : 45_000,
    refineSteps: quick ? 0 : 2,
    targetLoadStepFactor: quick ? 0 : 3,
    rampBudgetMs: quick ? 30_000 : 360_000,
    finalDrainMs: quick ? 5_000 : 90_000,
    deadlineMs: quick ? 108_000 : Number.POSITIVE_INFINITY,
    concurrency,
    skip,
    cpuProfileDir: values['cpu-prof'] !== undefined ? path.resolve(values['cpu-prof']) : undefined,
    apis,
    workers,
    callbackMs,
    workerSlots,
    workerNice,
    heartbeatTimeoutMs,
  };
}

// ─── small helpers ──────────────────────────────────────────────────────────────────────────────

/** Epoch milliseconds with sub-millisecond precision (performance.now() based). */
const now = (): number => performance.timeOrigin + performance.now();
const T0 = now();

function log(message: string): void {
  const elapsed = ((now() - T0) / 1000).toFixed(1).padStart(6);
  process.stdout.write(`[bench +${elapsed}s] ${message}\n`);
}


function round(value: number | null | undefined, digits = 1): number | null {
  if (value === null || value === undefined || !Number.isFinite(value)) return null;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

interface Distribution {
  n: number;
  p50: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
}

function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    p999: round(percentile(sorted, 99.9)),
    max: round(sorted[sorted.length - 1]),
  };
}


function errorKey(err: unknown): string {
  const code = isRecord(err) && typeof err.code === 'string' ? err.code : undefined;
  const name = err instanceof Error ? err.name : 'Error';
  return code ?? name;
}

// ─── /proc sampling ─────────────────────────────────────────────────────────────────────────────

const CLK_TCK = await readClkTck();

async function readClkTck(): Promise<number> {
  try {
    const { stdout } = await promisify(execFile)('getconf', ['CLK_TCK']);
    const value = Number(stdout.trim());
    return Number.isFinite(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
}

interface ProcReading {
  /** utime + stime, clock ticks. */
  ticks: number;
  rssKb: number;
  hwmKb: number;
}

function readProc(pid: number): ProcReading | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): rest[0] is field 3 (state), so
    // utime (field 14) is rest[11] and stime (field 15) is rest[12].
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string): number => {
      const match = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
      return match ? Number(match[1]) : 0;
    };
    return { ticks, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** All CPUs together: busy and total ticks since boot (/proc/stat's first line). */
function readMachineTicks(): { busy: number; total: number } {
  const first = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = first.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((sum, x) => sum + (Number.isFinite(x) ? x : 0), 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

interface ProcUsage {
  pid: number;
  cpuSec: number;
  /** Of one core: 100 % = one core fully busy. */
  cpuPct: number;
  peakRssMb: number;
  endRssMb: number;
}

interface ResourceUsage {
  seconds: number;
  procs: Record<string, ProcUsage>;
  /** Every CPU of the machine: busy CPU-seconds, and those not spent by the tracked processes. */
  machineBusyCpuSec: number;
  otherCpuSec: number;
}

class Sampler {
  private readonly procs = new Map<string, number>();
  private readonly windows = new Set<{ peak: Map<string, number> }>();
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => this.tick(), 250);
    this.timer.unref();
  }

  track(name: string, pid: number | undefined): void {
    if (pid !== undefined) this.procs.set(name, pid);
  }

  untrack(name: string): void {
    this.procs.delete(name);
  }

  pid(name: string): number | undefined {
    return this.procs.get(name);
  }

  tracked(): Array<[string, number]> {
    return [...this.procs.entries()];
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Starts measuring the tracked processes; `close()` returns what they used since. */
  open(): { close(): ResourceUsage } {
    const startedAt = now();
    const machineStart = readMachineTicks();
    const start = new Map<string, { pid: number; reading: ProcReading }>();
    for (const [name, pid] of this.procs) {
      const reading = readProc(pid);
      if (reading !== undefined) start.set(name, { pid, reading });
    }
    const window = { peak: new Map<string, number>([...start].map(([name, s]) => [name, s.reading.rssKb])) };
    this.windows.add(window);
    return {
      close: (): ResourceUsage => {
        this.windows.delete(window);
        this.tick([window]);
        const seconds = (now() - startedAt) / 1000;
        const procs: Record<string, ProcUsage> = {};
        let ours = 0;
        for (const [name, { pid, reading }] of start) {
          const end = readProc(pid);
          if (end === undefined) continue;
          const cpuSec = (end.ticks - reading.ticks) / CLK_TCK;
          ours += cpuSec;
          procs[name] = {
            pid,
            cpuSec: round(cpuSec, 2) ?? 0,
            cpuPct: round((100 * cpuSec) / Math.max(seconds, 0.001), 0) ?? 0,
            peakRssMb: round(Math.max(window.peak.get(name) ?? 0, end.rssKb) / 1024, 0) ?? 0,
            endRssMb: round(end.rssKb / 1024, 0) ?? 0,
          };
        }
        const machineEnd = readMachineTicks();
        const machineBusy = (machineEnd.busy - machineStart.busy) / CLK_TCK;
        return {
          seconds: round(seconds, 1) ?? 0,
          procs,
          machineBusyCpuSec: round(machineBusy, 1) ?? 0,
          otherCpuSec: round(Math.max(0, machineBusy - ours), 1) ?? 0,
        };
      },
    };
  }

  private tick(windows: Iterable<{ peak: Map<string, number> }> = this.windows): void {
    const list = [...windows];
    if (list.length === 0) return;
    for (const [name, pid] of this.procs) {
      const reading = readProc(pid);
      if (reading === undefined) continue;
      for (const window of list) {
        if (!window.peak.has(name)) continue;
        window.peak.set(name, Math.max(window.peak.get(name) ?? 0, reading.rssKb));
      }
    }
  }
}

// ─── the app's endpoints: callback and webhook receivers ────────────────────────────────────────

interface WebhookArrival {
  at: number;
  status: string;
}

interface HeldCall {
  taskId: string;
  arrivedAt: number;
  response: ServerResponse;
  timer: NodeJS.Timeout | undefined;
  answered: boolean;
  closedAt: number | undefined;
  /** Pinned calls (cancel targets) are held until the connection closes, not released on a timer. */
  pinned: boolean;
}

/**
 * What the held-callback endpoint (`/cb/hold`) does with a request; one per concurrency run.
 * While the arrival phase lasts every call is held (so calls that arrive late still overlap the
 * early ones); when it ends each is answered once it has been held `holdMs`, and calls arriving
 * after that are answered at once.
 */
class HoldPolicy {
  readonly held = new Map<string, HeldCall>();
  readonly arrivedAt = new Map<string, number>();
  open = 0;
  peakOpen = 0;
  arrivals = 0;
  answeredAtOnce = 0;
  private holding = true;

  constructor(readonly holdMs: number) {}

  handle(taskId: string, response: ServerResponse): void {
    const arrivedAt = now();
    this.arrivals++;
    if (!this.arrivedAt.has(taskId)) this.arrivedAt.set(taskId, arrivedAt);
    if (!this.holding) {
      this.answeredAtOnce++;
      reply(response, 200, { held: 0 });
      return;
    }
    const call: HeldCall = { taskId, arrivedAt, response, timer: undefined, answered: false, closedAt: undefined, pinned: false };
    this.held.set(taskId, call);
    this.open++;
    this.peakOpen = Math.max(this.peakOpen, this.open);
    // 'close' on the response before it was answered: the connection went away (AsyncQueue aborted).
    response.once('close', () => {
      if (call.answered) return;
      call.closedAt = now();
      call.answered = true;
      this.open--;
      if (call.timer !== undefined) clearTimeout(call.timer);
    });
  }

  /** Held until the connection closes (bounded at 60 s), whatever the phase. */
  pin(call: HeldCall): void {
    call.pinned = true;
    if (call.timer !== undefined) clearTimeout(call.timer);
    call.timer = setTimeout(() => this.release(call), 60_000);
  }

  endArrivalPhase(): void {
    this.holding = false;
    for (const call of this.held.values()) {
      if (call.answered || call.pinned) continue;
      call.timer = setTimeout(() => this.release(call), Math.max(0, call.arrivedAt + this.holdMs - now()));
    }
  }

  release(call: HeldCall): void {
    if (call.answered) return;
    call.answered = true;
    this.open--;
    if (call.timer !== undefined) clearTimeout(call.timer);
    reply(call.response, 200, { heldMs: Math.round(now() - call.arrivedAt) });
  }

  releaseAll(): void {
    this.holding = false;
    for (const call of this.held.values()) this.release(call);
  }
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  if (response.destroyed || response.writableEnded) return;
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A plain node:http server on 127.0.0.1 playing the app's callback or webhook endpoint. */
class Endpoint {
  callbacks = 0;
  hold: HoldPolicy | undefined;
  webhooks = 0;
  duplicateWebhooks = 0;

  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  static async start(onRequest: (endpoint: Endpoint, request: IncomingMessage, body: string, response: ServerResponse) => void): Promise<Endpoint> {
    let endpoint: Endpoint | undefined;
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        if (endpoint !== undefined) onRequest(endpoint, request, Buffer.concat(chunks).toString('utf8'), response);
      });
    });
    server.keepAliveTimeout = 60_000;
    server.headersTimeout = 65_000;
    server.requestTimeout = 0; // held calls stay open as long as the bench wants
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    endpoint = new Endpoint(server, `http://127.0.0.1:${port}`);
    return endpoint;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await within(new Promise<void>((resolve) => this.server.close(() => resolve())), 5_000);
  }
}

/**
 * Callback endpoint: `/cb/fast` answers 200 JSON at once; `/cb/slow/<ms>` after that many
 * milliseconds (a slow app); `/cb/hold` follows its HoldPolicy.
 */
function callbackHandler(endpoint: Endpoint, request: IncomingMessage, _body: string, response: ServerResponse): void {
  endpoint.callbacks++;
  const url = request.url ?? '/';
  if (url.startsWith('/cb/hold') && endpoint.hold !== undefined) {
    endpoint.hold.handle(header(request, 'asyncqueue-task-id') ?? `unknown-${randomUUID()}`, response);
    return;
  }
  const slow = /^\/cb\/slow\/(\d+)$/.exec(url);
  if (slow !== null) {
    setTimeout(() => reply(response, 200, { ok: true }), Number(slow[1]));
    return;
  }
  reply(response, 200, { ok: true });
}

/** Webhook endpoint: records the first arrival per task id (from the body) for end-to-end latency. */
function webhookHandler(arrivals: Map<string, WebhookArrival>) {
  return (endpoint: Endpoint, _request: IncomingMessage, body: string, response: ServerResponse): void => {
    const at = now();
    endpoint.webhooks++;
    const event = parseJson(body);
    const taskId = isRecord(event) && typeof event.taskId === 'string' ? event.taskId : undefined;
    if (taskId !== undefined) {
      if (arrivals.has(taskId)) endpoint.duplicateWebhooks++;
      else arrivals.set(taskId, { at, status: isRecord(event) && typeof event.status === 'string' ? event.status : '?' });
    }
    reply(response, 200, { received: true });
  };
}

// ─── load targets: AsyncQueue's API, and the raw Temporal baseline ──────────────────────────────

interface CreateResult {
  ok: boolean;
  id?: string;
  error?: string;
}

interface Target {
  name: string;
  /** Starts one task (or workflow); never throws. */
  create(seq: number, stepTag: string): Promise<CreateResult>;
  /** When the task's end was observed (webhook received / no-op webhook activity ran). */
  completedAt(id: string): number | undefined;
  /** Throws when a process the target needs has died. */
  assertAlive(): void;
}

interface ApiAnswer {
  status: number;
  body: unknown;
  error?: string;
}

class ApiClient {
  readonly pool: Pool;

  constructor(readonly baseUrl: string) {
    this.pool = new Pool(baseUrl, {
      connections: 512,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
      connectTimeout: 10_000,
    });
  }

  /** Never throws: status 0 with `error` when there was no HTTP answer. */
  async post(urlPath: string, body: unknown): Promise<ApiAnswer> {
    try {
      const response = await this.pool.request({
        method: 'POST',
        path: urlPath,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await response.body.text();
      return { status: response.statusCode, body: text === '' ? undefined : parseJson(text) };
    } catch (err) {
      return { status: 0, body: undefined, error: errorKey(err) };
    }
  }

  async get(urlPath: string): Promise<ApiAnswer> {
    try {
      const response = await this.pool.request({ method: 'GET', path: urlPath });
      const text = await response.body.text();
      return { status: response.statusCode, body: text === '' ? undefined : parseJson(text) };
    } catch (err) {
      return { status: 0, body: undefined, error: errorKey(err) };
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

function apiErrorText(status: number, body: unknown): string {
  const error = isRecord(body) && isRecord(body.error) ? body.error : undefined;
  return `HTTP ${status}${error !== undefined && typeof error.code === 'string' ? ` ${error.code}` : ''}`;
}

class AsyncQueueTarget implements Target {
  readonly name = 'AsyncQueue';
  private next = 0;

  constructor(
    /** One client per API process; creates go to them in turn. */
    private readonly apis: ApiClient[],
    private readonly callbackUrl: string,
    private readonly webhookUrl: string,
    private readonly webhooks: Map<string, WebhookArrival>,
    private readonly children: () => Started[],
  ) {}

  async create(seq: number, stepTag: string): Promise<CreateResult> {
    const api = this.apis[this.next++ % this.apis.length];
    if (api === undefined) return { ok: false, error: 'no API process' };
    const answer = await api.post('/v1/tasks', {
      callbackUrl: this.callbackUrl,
      payload: { bench: stepTag, seq, note: 'asyncqueue bench task' },
      webhookUrl: this.webhookUrl,
      retries: 3,
      timeout: 30,
    });
    if (answer.status === 0) return { ok: false, error: answer.error ?? 'no answer' };
    const id = isRecord(answer.body) && typeof answer.body.id === 'string' ? answer.body.id : undefined;
    if (answer.status !== 202 || id === undefined) return { ok: false, error: apiErrorText(answer.status, answer.body) };
    return { ok: true, id };
  }

  completedAt(id: string): number | undefined {
    return this.webhooks.get(id)?.at;
  }

  assertAlive(): void {
    for (const child of this.children()) {
      if (child.child.exitCode !== null || child.child.signalCode !== null) {
        throw new Error(`a child process died (pid ${child.child.pid}, exit ${child.child.exitCode ?? child.child.signalCode}):\n${child.output().slice(-2000)}`);
      }
    }
  }
}

/** The policy the API gives a task by default: the baseline workflow uses the same numbers. */
const DEFAULT_POLICY = loadConfig({}).policy;

class BaselineTarget implements Target {
  readonly name = 'Temporal baseline';
  readonly completions = new Map<string, number>();

  constructor(
    private readonly connection: Connection,
    private readonly client: Client,
    private readonly taskQueue: string,
    private readonly runId: string,
    /** AsyncQueue's policy, so the workflows match in shape. */
    private readonly policy: typeof DEFAULT_POLICY,
  ) {}

  /** The no-op activities, run by the in-process worker; the second one marks the task's end. */
  activities(): BaselineActivities {
    return {
      // Like callCallback and deliverWebhook, no heartbeat: theirs start after 1 s, and a no-op is done before.
      noopCallback: async ({ payload }) => {
        const context = Context.current();
        return { attempt: context.info.attempt, result: { ok: true, echo: payload } };
      },
      noopWebhook: async ({ id }) => {
        const context = Context.current();
        if (!this.completions.has(id)) this.completions.set(id, now());
        return { attempt: context.info.attempt, statusCode: 200 };
      },
    };
  }

  async create(seq: number, stepTag: string): Promise<CreateResult> {
    const id = `bench-${this.runId}-${stepTag}-${seq}`;
    const createdAt = new Date().toISOString();
    const input: BaselineInput = {
      id,
      payload: { bench: stepTag, seq, note: 'asyncqueue bench task' },
      timeoutSeconds: 30,
      retries: 3,
      ...this.policy,
    };
    try {
      await this.connection.withDeadline(Date.now() + 30_000, () =>
        this.client.workflow.start<typeof baselineWorkflow>('baselineWorkflow', {
          taskQueue: this.taskQueue,
          workflowId: id,
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          args: [input],
          memo: { [TASK_MEMO_KEY]: { id, status: 'pending', createdAt, updatedAt: createdAt, attempts: 0 } },
          typedSearchAttributes: [{ key: TASK_STATUS_SEARCH_ATTRIBUTE, value: 'running' }],
          staticSummary: 'POST 127.0.0.1',
        }),
      );
      return { ok: true, id };
    } catch (err) {
      return { ok: false, error: errorKey(err) };
    }
  }

  completedAt(id: string): number | undefined {
    return this.completions.get(id);
  }

  assertAlive(): void {}
}

// ─── the open-model ramp ────────────────────────────────────────────────────────────────────────

interface StepRecord {
  intendedAt: number;
  sentAt: number;
  answeredAt?: number;
  result?: CreateResult;
}

interface StepResult {
  targetRate: number;
  seconds: number;
  sent: number;
  /** Sends per second the generator achieved (below target: this process could not keep up). */
  sentPerSec: number;
  created: number;
  errors: number;
  errorKinds: Record<string, number>;
  /** Scheduled send → answer (202 / start returned), ms. */
  createMs: Distribution;
  /** Scheduled send → webhook received (no-op webhook activity ran), ms. */
  e2eMs: Distribution;
  /**
   * Completions per second over the step's last three quarters, against the arrival rate: in a
   * steady state (any constant latency below a quarter step) the two are equal; a backlog shows as less.
   */
  completedPerSec: number;
  /** completedPerSec / target rate. */
  completionRatio: number;
  completedTotal: number;
  notCompleted: number;
  notCompletedIds: string[];
  drainSec: number;
  /** Scheduled → actually sent, ms: how far behind the generator ran. */
  sendLagMs: Distribution;
  /** During the load only (CPU % = how busy each process was at this rate). */
  resources: ResourceUsage;
  /** Load + drain: all the work of this step's tasks; CPU ms per task comes from this. */
  cpuMsPerTask: Record<string, number>;
  sustainable: boolean;
  reason: string;
}

interface RampResult {
  target: string;
  steps: StepResult[];
  maxSustainableRate: number | null;
  firstUnsustainable: { rate: number; reason: string } | null;
  /** True when the ramp ran out of rates or time before finding a limit. */
  limitNotReached: boolean;
  note: string;
  leftover: { notCompleted: number; ids: string[]; views: unknown[] };
  /**
   * A step of its own at 80 % of the limit, `targetLoadStepFactor` steps long (the create-latency
   * target's load, with enough requests for a p99 that is not one unlucky request). Not a ramp step.
   */
  targetLoad: StepResult | null;
}

/** One rate for `stepMs`, then a bounded drain. `pendingIds`: every created task not finished yet. */
async function runStep(
  target: Target,
  rate: number,
  options: BenchOptions,
  sampler: Sampler,
  stepTag: string,
  bestP99: number | null,
  stepMs = options.stepMs,
): Promise<{ result: StepResult; pendingIds: string[] }> {
  const total = Math.max(1, Math.round((rate * stepMs) / 1000));
  const records: StepRecord[] = [];
  const inFlight = new Set<Promise<void>>();
  const window = sampler.open();
  const wholeWindow = sampler.open();
  const t0 = now();
  let sent = 0;
  for (let guard = 0; sent < total && guard < 10_000_000; guard++) {
    const due = Math.min(total, Math.floor(((now() - t0) * rate) / 1000) + 1);
    while (sent < due) {
      const record: StepRecord = { intendedAt: t0 + (sent * 1000) / rate, sentAt: now() };
      records.push(record);
      const seq = sent;
      const promise = target.create(seq, stepTag).then((result) => {
        record.answeredAt = now();
        record.result = result;
      });
      inFlight.add(promise);
      void promise.finally(() => inFlight.delete(promise));
      sent++;
    }
    if (sent >= total) break;
    await sleep(t0 + (sent * 1000) / rate - now());
  }
  const lastSentAt = records[records.length - 1]?.sentAt ?? t0;
  const loadEnd = t0 + stepMs;
  await sleep(loadEnd - now());
  const resources = window.close();
  target.assertAlive();

  // Creates still in flight answer (or time out at 30 s) before anything is counted.
  await within(Promise.allSettled([...inFlight]), 35_000);
  const drainStart = now();
  for (let guard = 0; guard < 100_000; guard++) {
    const pending = records.some((r) => r.result?.ok === true && r.result.id !== undefined && target.completedAt(r.result.id) === undefined);
    if (!pending || now() - loadEnd > options.drainMaxMs) break;
    await sleep(100);
  }
  const drainSec = (now() - drainStart) / 1000;
  const whole = wholeWindow.close();

  const createLatencies: number[] = [];
  const e2e: number[] = [];
  const sendLag: number[] = [];
  const errorKinds: Record<string, number> = {};
  let created = 0;
  let completedLate = 0;
  let completedTotal = 0;
  const lateStart = t0 + stepMs / 4;
  const notCompletedIds: string[] = [];
  for (const record of records) {
    sendLag.push(record.sentAt - record.intendedAt);
    const result = record.result;
    if (result === undefined) {
      errorKinds['no answer within 35 s'] = (errorKinds['no answer within 35 s'] ?? 0) + 1;
      continue;
    }
    if (!result.ok || result.id === undefined) {
      const kind = result.error ?? 'error';
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
      continue;
    }
    created++;
    if (record.answeredAt !== undefined) createLatencies.push(record.answeredAt - record.intendedAt);
    const doneAt = target.completedAt(result.id);
    if (doneAt === undefined) {
      notCompletedIds.push(result.id);
      continue;
    }
    completedTotal++;
    e2e.push(doneAt - record.intendedAt);
    if (doneAt > lateStart && doneAt <= loadEnd) completedLate++;
  }
  const errors = records.length - created;
  const e2eMs = distribution(e2e);
  const sentPerSec = records.length > 1 ? (records.length - 1) / Math.max(0.001, (lastSentAt - t0) / 1000) : records.length;
  const completedPerSec = completedLate / ((0.75 * stepMs) / 1000);
  const completionRatio = completedPerSec / rate;

  let reason = 'ok';
  let sustainable = true;
  if (errors > 0) {
    sustainable = false;
    reason = `${errors} errors (${Object.entries(errorKinds).map(([k, v]) => `${k}: ${v}`).join(', ')})`;
  } else if (sentPerSec < rate * 0.95) {
    sustainable = false;
    reason = `load generator reached only ${sentPerSec.toFixed(1)}/s (this process is CPU-starved)`;
  } else if (completionRatio < 0.95) {
    sustainable = false;
    reason = `completions ${completedPerSec.toFixed(1)}/s = ${(completionRatio * 100).toFixed(0)}% of arrivals (last 3/4 of the step)`;
  } else if (e2eMs.p99 !== null && e2eMs.p99 > Math.max(2_000, 10 * (bestP99 ?? Number.POSITIVE_INFINITY))) {
    sustainable = false;
    reason = `e2e p99 ${Math.round(e2eMs.p99)} ms > 10x the best step's ${Math.round(bestP99 ?? 0)} ms`;
  } else if (bestP99 === null && e2eMs.p99 !== null && e2eMs.p99 > 5_000) {
    sustainable = false;
    reason = `e2e p99 ${Math.round(e2eMs.p99)} ms`;
  }
  const result: StepResult = {
    targetRate: rate,
    seconds: stepMs / 1000,
    sent: records.length,
    sentPerSec: round(sentPerSec, 1) ?? 0,
    created,
    errors,
    errorKinds,
    createMs: distribution(createLatencies),
    e2eMs,
    completedPerSec: round(completedPerSec, 1) ?? 0,
    completionRatio: round(completionRatio, 3) ?? 0,
    completedTotal,
    notCompleted: notCompletedIds.length,
    notCompletedIds: notCompletedIds.slice(0, 20),
    drainSec: round(drainSec, 1) ?? 0,
    sendLagMs: distribution(sendLag),
    resources,
    cpuMsPerTask: Object.fromEntries(
      Object.entries(whole.procs).map(([name, usage]) => [name, round((usage.cpuSec * 1000) / Math.max(1, completedTotal), 1) ?? 0]),
    ),
    sustainable,
    reason,
  };
  return { result, pendingIds: notCompletedIds };
}

async function ramp(
  target: Target,
  options: BenchOptions,
  sampler: Sampler,
  tagPrefix: string,
  /** Time the rest of the run needs after this ramp (counts against --quick's deadline). */
  reserveMs: number,
  describeLeftover?: (ids: string[]) => Promise<unknown[]>,
): Promise<RampResult> {
  const started = now();
  const steps: StepResult[] = [];
  let note = '';
  let bestP99: number | null = null;
  let pendingIds: string[] = [];
  // Room for the final drain and what follows the ramp within the run's deadline.
  const budgetMs = Math.min(options.rampBudgetMs, T0 + options.deadlineMs - started - options.finalDrainMs - reserveMs);
  const runAt = async (rate: number, stepMs = options.stepMs): Promise<StepResult> => {
    log(`${target.name}: ${rate} tasks/s for ${stepMs / 1000} s`);
    const { result: step, pendingIds: stepPending } = await runStep(target, rate, options, sampler, `${tagPrefix}${rate}`, bestP99, stepMs);
    pendingIds.push(...stepPending);
    const cpu = Object.entries(step.resources.procs)
      .map(([name, usage]) => `${name} ${usage.cpuPct}%`)
      .join(', ');
    log(
      `  sent ${step.sent} (${step.sentPerSec}/s), done ${step.completedPerSec}/s, errors ${step.errors}, ` +
        `create p50/p99 ${step.createMs.p50}/${step.createMs.p99} ms, e2e p50/p99 ${step.e2eMs.p50}/${step.e2eMs.p99} ms, ` +
        `drain ${step.drainSec} s; CPU ${cpu}, other ${step.resources.otherCpuSec} s → ${step.sustainable ? 'sustainable' : `NOT sustainable: ${step.reason}`}`,
    );
    if (stepMs === options.stepMs) steps.push(step);
    if (step.sustainable && step.e2eMs.p99 !== null) bestP99 = bestP99 === null ? step.e2eMs.p99 : Math.min(bestP99, step.e2eMs.p99);
    await sleep(1_000); // let the system settle between steps
    return step;
  };
  const outOfTime = (stepMs = options.stepMs): boolean => steps.length > 0 && now() - started + stepMs + 2_000 > budgetMs;
  const budgetNote = (rate: number): string =>
    `stopped before ${rate}/s: the ramp's time budget (${Math.round(budgetMs / 1000)} s) was used up`;

  let lo: number | null = null;
  let hi: number | null = null;
  for (const rate of options.rates) {
    if (outOfTime()) {
      note = budgetNote(rate);
      break;
    }
    if ((await runAt(rate)).sustainable) lo = rate;
    else {
      hi = rate;
      break;
    }
  }
  // The ramp's rates are coarse; bisect between the last sustainable rate and the first failing
  // one so the limit (and the ratio to the engine's) is not off by a whole step.
  for (let probe = 0; probe < options.refineSteps && lo !== null && hi !== null; probe++) {
    const mid = Math.round((lo + hi) / 2);
    if (mid === lo || mid === hi) break;
    if (outOfTime()) {
      note = budgetNote(mid);
      break;
    }
    if ((await runAt(mid)).sustainable) lo = mid;
    else hi = mid;
  }
  const sustainableSteps = steps.filter((s) => s.sustainable);
  const failed = steps.filter((s) => !s.sustainable).sort((a, b) => a.targetRate - b.targetRate)[0];
  const maxSustainableRate = sustainableSteps.length > 0 ? Math.max(...sustainableSteps.map((s) => s.targetRate)) : null;
  let targetLoad: StepResult | null = null;
  const targetLoadMs = options.stepMs * options.targetLoadStepFactor;
  if (options.targetLoadStepFactor > 0 && maxSustainableRate !== null && failed !== undefined) {
    const rate = Math.round(8 * maxSustainableRate) / 10;
    if (outOfTime(targetLoadMs + TARGET_LOAD_SETTLE_MS)) note ||= `no step at 80 % of the limit: the ramp's time budget was used up`;
    else {
      // The failing steps leave work behind that is not this load's: timers of their finished
      // calls (heartbeat and start-to-close timeouts) fire up to ~35 s later. Let them pass.
      log(`${target.name}: ${TARGET_LOAD_SETTLE_MS / 1000} s for the ramp's leftover timers to fire`);
      await sleep(TARGET_LOAD_SETTLE_MS);
      targetLoad = await runAt(rate, targetLoadMs);
    }
  }

  // Whatever the steps left behind must still finish: a task that never does is a finding.
  pendingIds = pendingIds.filter((id) => target.completedAt(id) === undefined);
  if (pendingIds.length > 0) {
    log(`${target.name}: waiting up to ${options.finalDrainMs / 1000} s for ${pendingIds.length} unfinished tasks`);
    const deadline = now() + options.finalDrainMs;
    for (let guard = 0; guard < 100_000 && now() < deadline && pendingIds.length > 0; guard++) {
      await sleep(250);
      pendingIds = pendingIds.filter((id) => target.completedAt(id) === undefined);
    }
    log(`${target.name}: ${pendingIds.length} still unfinished`);
  }
  const views = describeLeftover !== undefined && pendingIds.length > 0 ? await describeLeftover(pendingIds.slice(0, 5)) : [];
  return {
    target: target.name,
    steps,
    maxSustainableRate,
    firstUnsustainable: failed !== undefined ? { rate: failed.targetRate, reason: failed.reason } : null,
    limitNotReached: failed === undefined,
    note: note || (failed === undefined ? `every rate up to ${options.rates[options.rates.length - 1]}/s was sustainable` : ''),
    leftover: { notCompleted: pendingIds.length, ids: pendingIds.slice(0, 20), views },
    targetLoad,
  };
}

/** Pause before the 80 % step: past the longest activity timer a finished ramp step leaves (35 s). */
const TARGET_LOAD_SETTLE_MS = 40_000;

// ─── the concurrency run: N held callbacks on the one worker ────────────────────────────────────

/** How long a held-call run waits for a cancelled call's connection to close. */
const CANCEL_CLOSE_WAIT_MS = 20_000;

/** The window in which a held-call run measures the cost of holding alone. */
const STEADY_HOLD_MS = 5_000;

interface ConcurrencyResult {
  n: number;
  origins: number;
  holdSec: number;
  created: number;
  createErrors: Record<string, number>;
  createSec: number;
  arrivals: number;
  /** Run start → end of the arrival phase (all arrived, or arrivals stalled 5 s, or the cap). */
  arrivalSec: number;
  /** Calls that arrived after the arrival phase: answered without holding. */
  answeredAtOnce: number;
  peakHeld: number;
  heldWhenMeasured: number;
  /** 202 answered → callback request reached the receiver, ms. */
  dispatchMs: Distribution;
  workerRssMb: { before: number | null; whenHeld: number | null; peak: number | null };
  /** (worker RSS when held − before) / calls held, KiB. */
  workerKbPerHeldCall: number | null;
  /** CPU % of a core while every call was held and nothing else happened (STEADY_HOLD_MS). */
  whileHeldCpuPct: { held: number; worker: number | null; temporal: number | null };
  cancel: {
    sampled: number;
    httpStatuses: Record<string, number>;
    httpMs: Distribution;
    /** Cancel sent → the held request's connection closed, ms. */
    toCloseMs: Distribution;
    closeValuesMs: number[];
    notClosed: number;
  };
  outcomes: Record<string, number>;
  stuck: number;
  stuckIds: string[];
  totalSec: number;
  resources: ResourceUsage;
}

async function concurrencyRun(
  spec: ConcurrencySpec,
  api: ApiClient,
  webhookUrl: string,
  webhooks: Map<string, WebhookArrival>,
  sampler: Sampler,
  assertAlive: () => void,
): Promise<ConcurrencyResult> {
  const hold = new HoldPolicy(spec.holdMs);
  const endpoints = await Promise.all(Array.from({ length: spec.origins }, () => Endpoint.start(callbackHandler)));
  resources.endpoints.push(...endpoints);
  for (const endpoint of endpoints) endpoint.hold = hold;
  const workerPid = sampler.pid('worker');
  const mb = (kb: number | undefined): number | null => (kb === undefined ? null : round(kb / 1024, 0));
  const before = workerPid !== undefined ? readProc(workerPid)?.rssKb : undefined;
  const window = sampler.open();
  const startedAt = now();
  log(`concurrency: ${spec.n} callbacks held ${spec.holdMs / 1000} s over ${spec.origins} origin(s)`);

  // Create as fast as the API allows (64 in flight): the held calls must overlap.
  const createdAt = new Map<string, number>();
  const createErrors: Record<string, number> = {};
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < spec.n) {
      const seq = next++;
      const origin = endpoints[seq % endpoints.length]?.origin ?? '';
      const answer = await api.post('/v1/tasks', {
        callbackUrl: `${origin}/cb/hold`,
        payload: { bench: 'hold', seq },
        webhookUrl,
        retries: 0,
        // Never the limit here: calls may wait in the worker's queue, then be held.
        timeout: Math.ceil((spec.holdMs + spec.arrivalCapMs) / 1000) + 300,
      });
      const id = isRecord(answer.body) && typeof answer.body.id === 'string' ? answer.body.id : undefined;
      if (answer.status === 202 && id !== undefined) createdAt.set(id, now());
      else {
        const kind = answer.status === 0 ? (answer.error ?? 'no answer') : apiErrorText(answer.status, answer.body);
        createErrors[kind] = (createErrors[kind] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: 64 }, lane));
  const createSec = (now() - startedAt) / 1000;
  log(`  created ${createdAt.size} in ${createSec.toFixed(1)} s; waiting for the calls to arrive`);

  // The arrival phase: until every call arrived, or arrivals stalled for 5 s, or the cap.
  let lastArrivals = -1;
  let lastChange = now();
  const arrivalCap = now() + spec.arrivalCapMs;
  for (let guard = 0; guard < 100_000; guard++) {
    assertAlive();
    if (hold.arrivals !== lastArrivals) {
      lastArrivals = hold.arrivals;
      lastChange = now();
    }
    if (hold.arrivals >= createdAt.size) break;
    if (now() - lastChange > 5_000 || now() > arrivalCap) break;
    await sleep(100);
  }
  const arrivalSec = (now() - startedAt) / 1000;
  const heldWhenMeasured = hold.open;
  const whenHeld = workerPid !== undefined ? readProc(workerPid)?.rssKb : undefined;
  log(`  ${hold.arrivals} arrived, ${heldWhenMeasured} held open now (peak ${hold.peakOpen}); worker RSS ${mb(whenHeld)} MB (before ${mb(before)} MB)`);

  // What holding costs by itself (mostly heartbeats): a few seconds with every call open and
  // nothing else going on.
  const steadyWindow = sampler.open();
  await sleep(STEADY_HOLD_MS);
  const steady = steadyWindow.close();
  const heldCpu = (name: string): number | null => steady.procs[name]?.cpuPct ?? null;
  log(`  while ${hold.open} held: worker ${heldCpu('worker')}%, Temporal ${heldCpu('temporal')}% of a core`);

  // Cancel a sample of held calls, spread over arrival order; each is held until its connection closes.
  const candidates = [...hold.held.values()].filter((call) => !call.answered).sort((a, b) => a.arrivedAt - b.arrivedAt);
  const sampleSize = Math.min(10, candidates.length);
  const targets: HeldCall[] = [];
  for (let i = 0; i < sampleSize; i++) {
    const call = candidates[Math.floor((i * candidates.length) / sampleSize)];
    if (call !== undefined && !targets.includes(call)) targets.push(call);
  }
  for (const call of targets) hold.pin(call);
  // Every other call stays held while the cancels are measured: ending the arrival phase first
  // would answer the calls already held `holdMs` at once (at 5000, nearly all), and the cancels
  // would be measured in that storm of completions instead of with N calls held.
  const httpStatuses: Record<string, number> = {};
  const httpMs: number[] = [];
  const sentAt = new Map<HeldCall, number>();
  await Promise.all(
    targets.map(async (call) => {
      const t = now();
      sentAt.set(call, t);
      const answer = await api.post(`/v1/tasks/${call.taskId}/cancel`, { reason: 'bench: cancel a held call' });
      httpMs.push(now() - t);
      const key = String(answer.status);
      httpStatuses[key] = (httpStatuses[key] ?? 0) + 1;
    }),
  );
  const closeDeadline = now() + CANCEL_CLOSE_WAIT_MS;
  for (let guard = 0; guard < 10_000 && now() < closeDeadline; guard++) {
    if (targets.every((call) => call.closedAt !== undefined)) break;
    await sleep(50);
  }
  const closeValues = targets
    .map((call) => (call.closedAt !== undefined ? call.closedAt - (sentAt.get(call) ?? call.closedAt) : undefined))
    .filter((ms): ms is number => ms !== undefined);
  const notClosed = targets.filter((call) => call.closedAt === undefined);
  for (const call of notClosed) hold.release(call);
  hold.endArrivalPhase();
  log(
    `  cancel → connection closed: ${closeValues.map((ms) => Math.round(ms)).join(', ')} ms` +
      (notClosed.length > 0 ? `; ${notClosed.length} NOT closed within ${CANCEL_CLOSE_WAIT_MS / 1000} s` : ''),
  );

  // Everything else is released by its timer; wait for every task's webhook.
  const doneDeadline = now() + spec.holdMs + 120_000;
  for (let guard = 0; guard < 100_000 && now() < doneDeadline; guard++) {
    assertAlive();
    if ([...createdAt.keys()].every((id) => webhooks.has(id))) break;
    await sleep(250);
  }
  hold.releaseAll();
  const usage = window.close();
  const outcomes: Record<string, number> = {};
  const stuckIds: string[] = [];
  const dispatch: number[] = [];
  for (const [id, at] of createdAt) {
    const arrival = webhooks.get(id);
    if (arrival === undefined) stuckIds.push(id);
    else outcomes[arrival.status] = (outcomes[arrival.status] ?? 0) + 1;
    const arrived = hold.arrivedAt.get(id);
    if (arrived !== undefined) dispatch.push(arrived - at);
  }
  await Promise.all(endpoints.map((endpoint) => endpoint.close()));
  const heldForPerCall = Math.max(1, heldWhenMeasured);
  return {
    n: spec.n,
    origins: spec.origins,
    holdSec: spec.holdMs / 1000,
    created: createdAt.size,
    createErrors,
    createSec: round(createSec, 1) ?? 0,
    arrivals: hold.arrivals,
    arrivalSec: round(arrivalSec, 1) ?? 0,
    answeredAtOnce: hold.answeredAtOnce,
    peakHeld: hold.peakOpen,
    heldWhenMeasured,
    dispatchMs: distribution(dispatch),
    workerRssMb: { before: mb(before), whenHeld: mb(whenHeld), peak: usage.procs.worker?.peakRssMb ?? null },
    workerKbPerHeldCall: before !== undefined && whenHeld !== undefined ? round((whenHeld - before) / heldForPerCall, 0) : null,
    whileHeldCpuPct: { held: heldWhenMeasured, worker: heldCpu('worker'), temporal: heldCpu('temporal') },
    cancel: {
      sampled: targets.length,
      httpStatuses,
      httpMs: distribution(httpMs),
      toCloseMs: distribution(closeValues),
      closeValuesMs: closeValues.map((ms) => Math.round(ms)),
      notClosed: notClosed.length,
    },
    outcomes,
    stuck: stuckIds.length,
    stuckIds: stuckIds.slice(0, 20),
    totalSec: round((now() - startedAt) / 1000, 1) ?? 0,
    resources: usage,
  };
}

// ─── machine and environment ────────────────────────────────────────────────────────────────────

interface Machine {
  nproc: number;
  cpuModel: string;
  totalMemoryGiB: number;
  node: string;
  kernel: string;
  temporalCli: string;
  temporalServer: string;
  /** Other processes that looked busy when the bench started (soak tests, test suites, servers). */
  otherActivity: string[];
}

async function describeMachine(temporalServer: string, ownPids: () => number[]): Promise<Machine> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  let temporalCli = 'unknown';
  try {
    const { stdout } = await promisify(execFile)('bash', [CLI_SCRIPT], { timeout: 15 * 60_000, maxBuffer: 1024 * 1024 });
    const cli = stdout.trim().split('\n').pop() ?? '';
    const version = await promisify(execFile)(cli, ['--version'], { timeout: 30_000 });
    temporalCli = version.stdout.trim();
  } catch (err) {
    temporalCli = `unknown (${(err as Error).message.split('\n')[0]})`;
  }
  return {
    nproc: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
    cpuModel: model,
    totalMemoryGiB: round(os.totalmem() / 1024 ** 3, 1) ?? 0,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    temporalCli,
    temporalServer,
    otherActivity: otherActivity(ownPids()),
  };
}

/** Processes that compete for the CPU: soak tests, test runs, other Temporal servers and workers. */
function otherActivity(ownPids: number[]): string[] {
  const own = new Set([process.pid, ...ownPids]);
  // Our own ancestors (npm, a shell, `time`) are not competition.
  let pid = process.ppid;
  for (let depth = 0; depth < 20 && pid > 1; depth++) {
    own.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  const found: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return found;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (own.has(pid)) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    if (/soak\.js|run-tests\.js|bench\.js|temporal server|worker-main\.js|api-main\.js|dist\/src\/main\.js/.test(cmd)) {
      found.push(`pid ${pid}: ${cmd.length > 120 ? `${cmd.slice(0, 117)}...` : cmd}`);
    }
  }
  return found;
}

// ─── report ─────────────────────────────────────────────────────────────────────────────────────

interface Report {
  startedAt: string;
  mode: 'quick' | 'full';
  options: {
    rates: number[];
    stepSeconds: number;
    big: boolean;
    skip: string[];
    apis: number;
    workers: number;
    callbackMs: number;
    workerNice: number;
    heartbeatTimeoutSec: number;
  };
  machine: Machine;
  settings: Record<string, string | number>;
  asyncqueue: RampResult | null;
  baseline: RampResult | null;
  ratio: number | null;
  concurrency: ConcurrencyResult[];
  lifetimePeakRssMb: Record<string, number>;
  processOutput: Record<string, { warnLines: number; errorLines: number; tail: string }>;
  findings: string[];
  wallSeconds: number;
}

function cell(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined) return '—';
  return digits === 0 ? String(Math.round(value)) : value.toFixed(digits);
}

function cpuCell(usage: ProcUsage | undefined, msPerTask: number | undefined): string {
  if (usage === undefined) return '—';
  return `${usage.cpuSec.toFixed(1)} s (${usage.cpuPct}%)${msPerTask !== undefined ? ` · ${msPerTask.toFixed(1)} ms/task` : ''}`;
}

function rampTables(result: RampResult, procNames: Array<[string, string]>): string[] {
  const lines: string[] = [];
  lines.push(
    '| rate/s | sent (/s) | done/s | errors | create p50 | p99 | p99.9 | max | e2e p50 | e2e p99 | drain s | verdict |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  );
  // Refinement steps run after the failing rate; the table reads better in rate order.
  const steps = [...result.steps, ...(result.targetLoad !== null ? [result.targetLoad] : [])].sort((a, b) => a.targetRate - b.targetRate);
  const rateCell = (s: StepResult): string => (s === result.targetLoad ? `${s.targetRate} (80 %, ${s.seconds} s)` : String(s.targetRate));
  for (const s of steps) {
    lines.push(
      `| ${rateCell(s)} | ${s.sent} (${s.sentPerSec}) | ${s.completedPerSec} | ${s.errors} | ${cell(s.createMs.p50, 1)} | ${cell(s.createMs.p99, 1)} | ${cell(s.createMs.p999, 1)} | ${cell(s.createMs.max, 1)} | ${cell(s.e2eMs.p50)} | ${cell(s.e2eMs.p99)} | ${s.drainSec} | ${s.sustainable ? 'ok' : `**not sustainable**: ${s.reason}`} |`,
    );
  }
  lines.push('');
  lines.push(
    `| rate/s | ${procNames.map(([, label]) => `${label} CPU`).join(' | ')} | ${procNames.map(([, label]) => `${label} peak RSS MB`).join(' | ')} | other procs CPU s |`,
    `|---:|${procNames.map(() => '---:|').join('')}${procNames.map(() => '---:|').join('')}---:|`,
  );
  for (const s of steps) {
    lines.push(
      `| ${rateCell(s)} | ${procNames.map(([name]) => cpuCell(s.resources.procs[name], s.cpuMsPerTask[name])).join(' | ')} | ${procNames.map(([name]) => cell(s.resources.procs[name]?.peakRssMb)).join(' | ')} | ${s.resources.otherCpuSec} |`,
    );
  }
  return lines;
}

/**
 * The create-latency target's load: the step run at 80 % of the ramp's limit, or else (--quick)
 * the highest sustainable ramp step at or below it, or else the lowest.
 */
function stepNearEightyPercent(result: RampResult): StepResult | undefined {
  if (result.targetLoad !== null) return result.targetLoad;
  if (result.maxSustainableRate === null) return undefined;
  const target = 0.8 * result.maxSustainableRate;
  const sustainable = result.steps.filter((s) => s.sustainable).sort((a, b) => a.targetRate - b.targetRate);
  return sustainable.filter((s) => s.targetRate <= target).at(-1) ?? sustainable[0];
}

/** Sampler and report name of the i-th (0-based) API or worker process: api, api-2, api-3… */
function processName(kind: 'api' | 'worker', index: number): string {
  return index === 0 ? kind : `${kind}-${index + 1}`;
}

function renderMarkdown(report: Report): string {
  const m = report.machine;
  const lines: string[] = [];
  lines.push(`# AsyncQueue benchmark (${report.mode}) — ${report.startedAt}`, '');
  lines.push(
    `- **Machine**: ${m.nproc} CPUs (${m.cpuModel}), ${m.totalMemoryGiB} GiB RAM, ${m.kernel}`,
    `- **Node** ${m.node}; **Temporal CLI**: ${m.temporalCli}; **server**: ${m.temporalServer}`,
    `- **Setup**: ${report.options.apis} API and ${report.options.workers} worker process(es) (\`api-main\`, \`worker-main\`), receivers in the bench process; ` +
      (report.options.callbackMs > 0 ? `each ramp callback answers after ${report.options.callbackMs} ms; ` : '') +
      `open-model arrivals, ${report.options.stepSeconds} s per rate; latencies measured from each request's *scheduled* send time.`,
    `- **Settings**: ${Object.entries(report.settings).map(([k, v]) => `${k}=${v}`).join(', ')}`,
  );
  if (m.otherActivity.length > 0) {
    lines.push(
      `- **WARNING: other load on this machine while measuring** (numbers are not representative; see "other procs CPU s"): ` +
        m.otherActivity.map((item) => `\`${item}\``).join('; '),
    );
  } else {
    lines.push('- No other AsyncQueue/Temporal/soak processes were running when the bench started.');
  }
  lines.push('', '## Summary', '');
  const aq = report.asyncqueue;
  const base = report.baseline;
  const limitText = (r: RampResult | null): string =>
    r === null
      ? 'not run'
      : `${r.maxSustainableRate === null ? 'none of the rates' : `${r.limitNotReached ? '≥ ' : ''}${r.maxSustainableRate} tasks/s`}` +
        (r.firstUnsustainable !== null ? ` (${r.firstUnsustainable.rate}/s: ${r.firstUnsustainable.reason})` : ` (${r.note})`);
  lines.push('| | highest sustainable rate (first failing rate: why) |', '|---|---|');
  lines.push(`| AsyncQueue (${report.options.apis} API + ${report.options.workers} worker) | ${limitText(aq)} |`);
  lines.push(`| Temporal baseline (raw client, no-op activities) | ${limitText(base)} |`);
  if (report.ratio !== null) {
    lines.push(`| **AsyncQueue / engine limit** | **${(report.ratio * 100).toFixed(0)} %**${(aq?.limitNotReached ?? false) || (base?.limitNotReached ?? false) ? ' (a bound: one ramp did not reach its limit)' : ''} |`);
  }
  for (const [label, r] of [['AsyncQueue', aq], ['Temporal baseline', base]] as const) {
    const atEighty = r !== null ? stepNearEightyPercent(r) : undefined;
    if (atEighty === undefined || r?.maxSustainableRate == null) continue;
    const share = `${Math.round((100 * atEighty.targetRate) / r.maxSustainableRate)} %`;
    lines.push(
      `| ${label} create p50 / p99 / p99.9 at ${atEighty.targetRate}/s (${share} of ${r.maxSustainableRate}/s; ${atEighty.created} requests over ${atEighty.seconds} s) | ` +
        `${cell(atEighty.createMs.p50, 1)} / **${cell(atEighty.createMs.p99, 1)}** / ${cell(atEighty.createMs.p999, 1)} ms |`,
    );
  }
  if (aq !== null) {
    lines.push('', '## AsyncQueue ramp (POST /v1/tasks → workflow → callback → webhook)', '');
    lines.push('Latencies in ms. *create*: scheduled send → 202. *e2e*: scheduled send → webhook received. *done/s*: webhooks received per second over the last 3/4 of the step (steady state; below the rate = a growing backlog). *drain*: time after the step until all its tasks had their webhook. ' +
        `*80 %*: a step of its own at 80 % of the limit, run after the ramp and a ${TARGET_LOAD_SETTLE_MS / 1000} s pause for its leftover activity timers.`, '');
    const { apis, workers } = report.options;
    const names: Array<[string, string]> = [
      ...Array.from({ length: apis }, (_, i): [string, string] => [processName('api', i), i === 0 ? 'API' : `API ${i + 1}`]),
      ...Array.from({ length: workers }, (_, i): [string, string] => [processName('worker', i), i === 0 ? 'worker' : `worker ${i + 1}`]),
    ];
    lines.push(...rampTables(aq, [...names, ['temporal', 'Temporal'], ['bench', 'bench']]));
    lines.push('', 'CPU: seconds during the step\'s load (% of one core) · CPU ms per finished task over load + drain. *bench* = this process (load generator and receivers). *other procs*: busy CPU-seconds of the whole machine not spent by the processes listed.');
    if (aq.leftover.notCompleted > 0) {
      lines.push('', `**${aq.leftover.notCompleted} task(s) never delivered a webhook** after the final drain: ${aq.leftover.ids.slice(0, 5).join(', ')}`);
      for (const view of aq.leftover.views) lines.push(`- \`${JSON.stringify(view).slice(0, 400)}\``);
    }
  }
  if (report.concurrency.length > 0) {
    const heartbeatSec = report.options.heartbeatTimeoutSec;
    lines.push('', '## Held callbacks on one worker', '');
    lines.push(
      '| N | origins | hold s | created in s | arrival phase s | peak held at once | answered unheld | dispatch p50 / p99 ms | worker RSS before → held → peak MB | KiB per held call | worker CPU | Temporal CPU | while held: worker · Temporal CPU | cancel → close p50 / max ms (n) | outcomes | stuck |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|',
    );
    for (const c of report.concurrency) {
      const w = c.resources.procs.worker;
      const t = c.resources.procs.temporal;
      lines.push(
        `| ${c.n} | ${c.origins} | ${c.holdSec} | ${c.createSec} | ${c.arrivalSec} | ${c.peakHeld} | ${c.answeredAtOnce} | ${cell(c.dispatchMs.p50)} / ${cell(c.dispatchMs.p99)} | ${cell(c.workerRssMb.before)} → ${cell(c.workerRssMb.whenHeld)} → ${cell(c.workerRssMb.peak)} | ${cell(c.workerKbPerHeldCall)} | ${w ? `${w.cpuSec.toFixed(1)} s (${w.cpuPct}%)` : '—'} | ${t ? `${t.cpuSec.toFixed(1)} s (${t.cpuPct}%)` : '—'} | ${cell(c.whileHeldCpuPct.worker)}% · ${cell(c.whileHeldCpuPct.temporal)}% | ${cell(c.cancel.toCloseMs.p50)} / ${cell(c.cancel.toCloseMs.max)} (${c.cancel.sampled - c.cancel.notClosed}/${c.cancel.sampled}) | ${Object.entries(c.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}${Object.keys(c.createErrors).length > 0 ? `; create errors ${JSON.stringify(c.createErrors)}` : ''} | ${c.stuck} |`,
      );
    }
    lines.push(
      '',
      `Heartbeat timeout ${heartbeatSec} s${heartbeatSec * 1000 === DEFAULT_POLICY.heartbeatTimeoutMs ? ' (the default)' : ''}. A cancel reaches a held call through the worker's cancel watch (one visibility query a second while it holds calls older than a second), so within about 1–2 s plus the signal's round trip. ` +
        '*arrival phase*: run start until every call arrived (or arrivals stalled 5 s); each call is held until then, through the cancels (measured with every other call still held), and at least *hold s*. *answered unheld*: calls that arrived after the arrival phase. ' +
          `*dispatch*: 202 → callback request at the receiver. *peak held*: requests open at the receiver at once. KiB per held call = (worker RSS when held − before) / calls held. CPU over the whole run; *while held*: % of a core during ${STEADY_HOLD_MS / 1000} s with every call open and nothing else going on (mostly heartbeats: one per held call every ${0.8 * heartbeatSec} s, and the cancel watch's query).`,
    );
  }
  if (base !== null) {
    lines.push('', '## Temporal baseline ramp (client.workflow.start → same workflow shape, no-op activities, in-process worker)', '');
    lines.push('Latencies in ms. *create*: scheduled → `workflow.start` returned. *e2e*: scheduled → the no-op "webhook" activity ran. *done/s* as above. The API and AsyncQueue worker were stopped; *bench* holds client, worker and load generator.', '');
    lines.push(...rampTables(base, [['temporal', 'Temporal'], ['bench', 'bench']]));
  }
  lines.push('', '## Process lifetime peaks (VmHWM)', '');
  lines.push(Object.entries(report.lifetimePeakRssMb).map(([name, value]) => `${name} ${value} MB`).join(', ') || '—');
  if (report.findings.length > 0) {
    lines.push('', '## Findings', '');
    for (const finding of report.findings) lines.push(`- ${finding}`);
  }
  lines.push('', `Wall time ${report.wallSeconds} s.`, '');
  return lines.join('\n');
}

// ─── setup, teardown, main ──────────────────────────────────────────────────────────────────────

const resources: {
  server?: DevServer;
  apis: Started[];
  workers: Started[];
  endpoints: Endpoint[];
  apiClients: ApiClient[];
  baselineWorker?: { worker: Worker; running: Promise<void> };
  nativeConnection?: NativeConnection;
  clientConnection?: Connection;
  tmpDir?: string;
  serverStopped?: boolean;
} = { apis: [], workers: [], endpoints: [], apiClients: [] };
let cleaning: Promise<void> | undefined;

async function stopChild(started: Started | undefined): Promise<void> {
  if (started === undefined) return;
  if (started.child.exitCode !== null || started.child.signalCode !== null) return;
  const exited = await within(started.stop('SIGTERM'), 10_000);
  if (exited === undefined) {
    started.child.kill('SIGKILL');
    await within(started.exited, 5_000);
  }
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const step = async (what: string, action: () => Promise<unknown>): Promise<void> => {
      try {
        if ((await within(action().then(() => true), 20_000)) === undefined) log(`cleanup: ${what} did not finish in 20 s`);
      } catch (err) {
        log(`cleanup: ${what} failed: ${String(err)}`);
      }
    };
    const r = resources;
    await step('API', () => Promise.all(r.apis.map(stopChild)));
    await step('worker', () => Promise.all(r.workers.map(stopChild)));
    if (r.baselineWorker !== undefined) {
      const { worker, running } = r.baselineWorker;
      await step('baseline worker', async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      });
    }
    if (r.nativeConnection !== undefined) await step('worker connection', () => r.nativeConnection!.close());
    if (r.clientConnection !== undefined) await step('client connection', () => r.clientConnection!.close());
    await step('HTTP pools', () => Promise.all(r.apiClients.map((client) => client.close())));
    await step('receivers', () => Promise.all(r.endpoints.map((endpoint) => endpoint.close())));
    if (r.server !== undefined) {
      await step('Temporal dev server', () => r.server!.stop());
      r.serverStopped = true;
    }
    if (r.tmpDir !== undefined) await step('temp folder', () => rm(r.tmpDir!, { recursive: true, force: true }));
  })();
  return cleaning;
}

/** Last resort on an abnormal exit: no child outlives the bench. */
process.on('exit', () => {
  const alive = (s: Started | undefined): number | undefined =>
    s !== undefined && s.child.exitCode === null && s.child.signalCode === null ? s.child.pid : undefined;
  for (const pid of [...resources.apis.map(alive), ...resources.workers.map(alive), resources.serverStopped ? undefined : resources.server?.pid]) {
    if (pid === undefined) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

async function waitForApi(baseUrl: string, children: Started[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    for (const child of children) {
      if (child.child.exitCode !== null) throw new Error(`a process exited during start-up:\n${child.output().slice(-2000)}`);
    }
    try {
      const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await response.text();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`the API at ${baseUrl} was not ready within 60 s`);
}

function outputSummary(started: Started | undefined): { warnLines: number; errorLines: number; tail: string } {
  const output = started?.output() ?? '';
  const lines = output.split('\n').filter((line) => line.trim() !== '');
  return {
    warnLines: lines.filter((line) => /"level":40/.test(line)).length,
    errorLines: lines.filter((line) => /"level":(50|60)/.test(line) || (/Error|error:/.test(line) && !/"level":/.test(line))).length,
    tail: output.slice(-3000),
  };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const runId = randomUUID().slice(0, 8);
  const startedAt = new Date().toISOString();
  const sampler = new Sampler();
  sampler.track('bench', process.pid);
  const findings: string[] = [];
  resources.tmpDir = await mkdtemp(path.join(os.tmpdir(), 'asyncqueue-bench-'));

  // Temporal: ours (in memory) unless TEMPORAL_ADDRESS names one.
  const external = process.env.TEMPORAL_ADDRESS?.trim();
  let address: string;
  let serverText: string;
  if (external !== undefined && external !== '') {
    address = external;
    serverText = `external at ${external} (its CPU and memory are not measured)`;
    log(`using the Temporal server at ${address}`);
  } else {
    log('starting an in-memory Temporal dev server');
    resources.server = await DevServer.start({ port: 0, uiPort: null, namespace: 'default' });
    address = resources.server.address;
    sampler.track('temporal', resources.server.pid);
    serverText = `embedded \`temporal server start-dev\` in memory at ${address} (pid ${resources.server.pid})`;
  }
  const machine = await describeMachine(serverText, () =>
    [resources.server?.pid, ...[...resources.apis, ...resources.workers].map((s) => s.child.pid)].filter((p): p is number => p !== undefined),
  );
  if (machine.otherActivity.length > 0) {
    log(`WARNING: other busy processes on this machine; numbers will not be representative:\n  ${machine.otherActivity.join('\n  ')}`);
  }

  // Receivers in this process.
  const webhooks = new Map<string, WebhookArrival>();
  const callbackEndpoint = await Endpoint.start(callbackHandler);
  const webhookEndpoint = await Endpoint.start(webhookHandler(webhooks));
  resources.endpoints.push(callbackEndpoint, webhookEndpoint);
  const webhookUrl = `${webhookEndpoint.origin}/hook`;

  const maxHeld = Math.max(0, ...options.concurrency.map((c) => c.n));
  const env: Record<string, string> = {
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: 'default',
    ASYNCQUEUE_TASK_QUEUE: `bench-${runId}`,
    ASYNCQUEUE_DATA_DIR: resources.tmpDir,
    ASYNCQUEUE_SIGNING_SECRET: `whsec_${randomBytes(32).toString('base64')}`,
    ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'true',
    ASYNCQUEUE_RATE_LIMIT: '0',
    ASYNCQUEUE_MAX_EVENT_LOOP_DELAY_MS: '0',
    ASYNCQUEUE_WORKER_MAX_CONCURRENT_CALLS: String(options.workerSlots ?? Math.max(2000, maxHeld + 100)),
    ASYNCQUEUE_WORKER_SHUTDOWN_GRACE: '1',
    ASYNCQUEUE_WORKER_NICE: String(options.workerNice),
    ASYNCQUEUE_HEARTBEAT_TIMEOUT: String(options.heartbeatTimeoutMs / 1000),
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
  };
  const settings: Record<string, string | number> = {
    ASYNCQUEUE_WORKER_MAX_CONCURRENT_CALLS: env.ASYNCQUEUE_WORKER_MAX_CONCURRENT_CALLS ?? '',
    ASYNCQUEUE_HEARTBEAT_TIMEOUT: `${options.heartbeatTimeoutMs / 1000} s${options.heartbeatTimeoutMs === DEFAULT_POLICY.heartbeatTimeoutMs ? ' (default)' : ''}`,
    ASYNCQUEUE_RATE_LIMIT: 0,
    ASYNCQUEUE_MAX_EVENT_LOOP_DELAY_MS: 0,
    ASYNCQUEUE_WORKER_NICE: options.workerNice,
    'task retries/timeout': '3 / 30 s',
    'API processes': options.apis,
    'worker processes': options.workers,
    'callback answers after': `${options.callbackMs} ms`,
    'CLK_TCK': CLK_TCK,
  };

  // Baseline runtime: installed before any native connection; the bundle is built while the
  // children start (it needs CPU once, not during measurements).
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const bundlePromise: Promise<WorkflowBundleWithSourceMap> | undefined = options.skip.has('baseline')
    ? undefined
    : bundleWorkflowCode({ workflowsPath: BASELINE_WORKFLOWS, logger: new DefaultLogger('WARN') });
  // A rejected bundle is reported when awaited; do not let it crash the process before that.
  bundlePromise?.catch(() => undefined);

  let aqResult: RampResult | null = null;
  const concurrency: ConcurrencyResult[] = [];
  const lifetimePeakRssMb: Record<string, number> = {};
  const processOutput: Report['processOutput'] = {};
  const runAsyncQueue = !options.skip.has('asyncqueue') || !options.skip.has('concurrency');

  if (runAsyncQueue) {
   try {
    const nodeArgs = options.cpuProfileDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [];
    const baseUrls: string[] = [];
    for (let i = 0; i < options.apis; i++) {
      const port = await freePort();
      baseUrls.push(`http://127.0.0.1:${port}`);
      const api = runEntry('api-main', { ...env, PORT: String(port) }, nodeArgs);
      resources.apis.push(api);
      sampler.track(processName('api', i), api.child.pid);
    }
    for (let i = 0; i < options.workers; i++) {
      const worker = runEntry('worker-main', env, nodeArgs);
      resources.workers.push(worker);
      sampler.track(processName('worker', i), worker.child.pid);
    }
    log(`started ${options.apis} API process(es) (${baseUrls.join(', ')}) and ${options.workers} worker(s) on task queue ${env.ASYNCQUEUE_TASK_QUEUE}`);
    const children = (): Started[] => [...resources.apis, ...resources.workers];
    for (const baseUrl of baseUrls) await waitForApi(baseUrl, children());
    resources.apiClients.push(...baseUrls.map((baseUrl) => new ApiClient(baseUrl)));
    const api = resources.apiClients[0]!;
    const callbackPath = options.callbackMs > 0 ? `/cb/slow/${options.callbackMs}` : '/cb/fast';
    const target = new AsyncQueueTarget(resources.apiClients, `${callbackEndpoint.origin}${callbackPath}`, webhookUrl, webhooks, children);

    // One task end to end before measuring: worker polling, bundle loaded, sockets warm.
    log('warm-up: one task end to end');
    const warm = await target.create(0, 'warmup');
    if (!warm.ok || warm.id === undefined) throw new Error(`warm-up create failed: ${warm.error}`);
    for (let i = 0; i < 600 && target.completedAt(warm.id) === undefined; i++) {
      target.assertAlive();
      await sleep(100);
    }
    if (target.completedAt(warm.id) === undefined) throw new Error('warm-up task did not finish within 60 s: is the worker running?');
    // A few more to warm the JIT and connection pools, then settle.
    await Promise.all(Array.from({ length: 20 }, (_, i) => target.create(i + 1, 'warmup')));
    await sleep(2_000);

    if (!options.skip.has('asyncqueue')) {
      // After this ramp: held-call runs (~hold + 10 s each), stopping the children, the baseline ramp.
      const reserveMs =
        (options.skip.has('concurrency') ? 0 : options.concurrency.reduce((sum, c) => sum + c.holdMs + 14_000, 0)) +
        (options.skip.has('baseline') ? 0 : 8_000 + options.rampBudgetMs);
      aqResult = await ramp(target, options, sampler, 'aq-', reserveMs, async (ids) =>
        Promise.all(
          ids.map(async (id) => {
            const answer = await api.get(`/v1/tasks/${id}`);
            const view = isRecord(answer.body)
              ? { id, http: answer.status, status: answer.body.status, attempts: answer.body.attempts, webhook: answer.body.webhook, error: answer.body.error, updatedAt: answer.body.updatedAt }
              : { id, http: answer.status, body: answer.body };
            return view;
          }),
        ),
      );
      if (aqResult.leftover.notCompleted > 0) {
        findings.push(
          `AsyncQueue: ${aqResult.leftover.notCompleted} created task(s) had no webhook ${options.finalDrainMs / 1000} s after the ramp ended ` +
            `(e.g. ${aqResult.leftover.ids.slice(0, 3).join(', ')}): ${JSON.stringify(aqResult.leftover.views.slice(0, 2))}`,
        );
      }
      for (const step of aqResult.steps) {
        if (step.errors > 0) findings.push(`AsyncQueue at ${step.targetRate}/s: ${step.errors} create errors ${JSON.stringify(step.errorKinds)}`);
      }
    }

    if (!options.skip.has('concurrency')) {
      await sleep(2_000);
      for (const spec of options.concurrency) {
        const result = await concurrencyRun(spec, api, webhookUrl, webhooks, sampler, () => target.assertAlive());
        concurrency.push(result);
        log(
          `  N=${spec.n}/${spec.origins} origin(s): peak held ${result.peakHeld}, worker RSS ${result.workerRssMb.before} → ${result.workerRssMb.whenHeld} MB (peak ${result.workerRssMb.peak}), ` +
            `cancel→close p50/max ${result.cancel.toCloseMs.p50}/${result.cancel.toCloseMs.max} ms, outcomes ${JSON.stringify(result.outcomes)}, stuck ${result.stuck}, ${result.totalSec} s`,
        );
        if (result.stuck > 0) findings.push(`Held-call run N=${spec.n}: ${result.stuck} task(s) never delivered a webhook (e.g. ${result.stuckIds.slice(0, 3).join(', ')})`);
        if (result.cancel.notClosed > 0) findings.push(`Held-call run N=${spec.n}: ${result.cancel.notClosed} of ${result.cancel.sampled} cancelled calls were not cut off within ${CANCEL_CLOSE_WAIT_MS / 1000} s`);
        if (result.peakHeld < result.created) {
          findings.push(
            `Held-call run N=${spec.n} over ${spec.origins} origin(s): at most ${result.peakHeld} of ${result.created} calls were open at the receiver at once; ` +
              `arrivals stalled at ${result.arrivals - result.answeredAtOnce} (the rest reached the receiver only after held calls were answered)` +
              (spec.origins === 1 && result.peakHeld === 256
                ? '. 256 = the worker\'s per-origin connection limit (src/worker.ts: guard.createDispatcher({ connections: 256 })): calls beyond it wait in undici\'s queue, their attempt timeout running'
                : ''),
          );
        }
        if (Object.keys(result.createErrors).length > 0) findings.push(`Held-call run N=${spec.n}: create errors ${JSON.stringify(result.createErrors)}`);
        await sleep(2_000);
      }
    }

    // Lifetime peaks and output are read below; then they stop: the baseline must not share the CPU with them.
   } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log(`AsyncQueue phase ABORTED: ${message}`);
    findings.push(`AsyncQueue phase aborted: ${message.slice(0, 2000)}`);
   }
    for (const [name, pid] of sampler.tracked()) {
      const reading = readProc(pid);
      if (reading !== undefined && (name.startsWith('api') || name.startsWith('worker'))) lifetimePeakRssMb[name] = round(reading.hwmKb / 1024, 0) ?? 0;
    }
    resources.apis.forEach((api, i) => (processOutput[processName('api', i)] = outputSummary(api)));
    resources.workers.forEach((worker, i) => (processOutput[processName('worker', i)] = outputSummary(worker)));
    log('stopping the API and the worker processes');
    await Promise.all([...resources.apis, ...resources.workers].map(stopChild));
    resources.apis.forEach((_, i) => sampler.untrack(processName('api', i)));
    resources.workers.forEach((_, i) => sampler.untrack(processName('worker', i)));
  }

  let baseResult: RampResult | null = null;
  if (bundlePromise !== undefined) {
    await sleep(2_000);
    const bundle = await bundlePromise;
    resources.nativeConnection = await NativeConnection.connect({ address });
    resources.clientConnection = await Connection.connect({ address });
    const client = new Client({ connection: resources.clientConnection, namespace: 'default' });
    const taskQueue = `bench-baseline-${runId}`;
    const target = new BaselineTarget(resources.clientConnection, client, taskQueue, runId, {
      ...DEFAULT_POLICY,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs,
    });
    const worker = await Worker.create({
      connection: resources.nativeConnection,
      namespace: 'default',
      taskQueue,
      workflowBundle: bundle,
      activities: target.activities(),
      // The AsyncQueue worker's settings (src/worker.ts, defaults).
      maxConcurrentActivityTaskExecutions: 2000,
      maxCachedWorkflows: 5000,
    });
    const running = worker.run();
    resources.baselineWorker = { worker, running };
    log('baseline warm-up');
    await Promise.all(Array.from({ length: 20 }, (_, i) => target.create(i, 'warmup')));
    for (let i = 0; i < 600 && target.completions.size < 20; i++) await sleep(100);
    await sleep(2_000);
    baseResult = await ramp(target, options, sampler, 'b-', 2_000);
    if (baseResult.leftover.notCompleted > 0) {
      findings.push(`Baseline: ${baseResult.leftover.notCompleted} workflow(s) had not run their second activity after the final drain`);
    }
    worker.shutdown();
    await within(running, 20_000);
    resources.baselineWorker = undefined;
  }
  const benchHwm = readProc(process.pid)?.hwmKb;
  if (benchHwm !== undefined) lifetimePeakRssMb.bench = round(benchHwm / 1024, 0) ?? 0;
  const serverPid = resources.server?.pid;
  if (serverPid !== undefined) {
    const reading = readProc(serverPid);
    if (reading !== undefined) lifetimePeakRssMb.temporal = round(reading.hwmKb / 1024, 0) ?? 0;
  }

  for (const [name, summary] of Object.entries(processOutput)) {
    if (summary.errorLines > 0) findings.push(`${name} logged ${summary.errorLines} error line(s); tail in the JSON report`);
  }
  if (machine.otherActivity.length > 0) {
    findings.push(`Measured while other processes were running (${machine.otherActivity.length}); see "other procs CPU s" per step.`);
  }
  const aqLimit = aqResult?.maxSustainableRate ?? null;
  const baseLimit = baseResult?.maxSustainableRate ?? null;
  const report: Report = {
    startedAt,
    mode: options.quick ? 'quick' : 'full',
    options: {
      rates: options.rates,
      stepSeconds: options.stepMs / 1000,
      big: options.big,
      skip: [...options.skip],
      apis: options.apis,
      workers: options.workers,
      callbackMs: options.callbackMs,
      workerNice: options.workerNice,
      heartbeatTimeoutSec: options.heartbeatTimeoutMs / 1000,
    },
    machine,
    settings,
    asyncqueue: aqResult,
    baseline: baseResult,
    ratio: aqLimit !== null && baseLimit !== null && baseLimit > 0 ? aqLimit / baseLimit : null,
    concurrency,
    lifetimePeakRssMb,
    processOutput,
    findings,
    wallSeconds: round((now() - T0) / 1000, 0) ?? 0,
  };
  const markdown = renderMarkdown(report);
  await mkdir(options.out, { recursive: true });
  const ignoreFile = path.join(options.out, '.gitignore');
  if (!existsSync(ignoreFile)) await writeFile(ignoreFile, '# benchmark output: never committed\n*\n');
  const stamp = startedAt.replace(/[:.]/g, '-');
  const base = path.join(options.out, `bench-${report.mode}-${stamp}`);
  await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(`${base}.md`, markdown);
  process.stdout.write(`\n${markdown}\n`);
  log(`results: ${base}.md and ${base}.json (the folder ignores itself via its own .gitignore)`);
  return 0;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${signal}: stopping every child and the server (again to exit at once)`);
    void cleanup().finally(() => process.exit(130));
  });
}

main()
  .then(async (code) => {
    await cleanup();
    log(`done in ${((now() - T0) / 1000).toFixed(0)} s`);
    process.exit(code);
  })
  .catch(async (err: unknown) => {
    log(`bench aborted: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await cleanup();
    process.exit(2);
  });
