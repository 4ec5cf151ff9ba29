/**
 * The held-call runs: N slow callbacks held open at once on the one worker, measuring its memory,
 * what holding alone costs the worker and the server, and how long a cancel takes to reach a held
 * call (cancel sent → the receiver sees the connection close) while all the others stay held.
 */
import { isRecord } from '../shared/json-values.js';
import { sleep } from '../shared/timing.js';
import { apiErrorText, type ApiClient } from './api-client.js';
import { log, now } from './clock.js';
import { distribution, round, type Distribution } from './distribution.js';
import { HoldPolicy, type HeldCall } from './hold-policy.js';
import type { ConcurrencySpec } from './options.js';
import { readProc, type ResourceUsage, type Sampler } from './process-sampler.js';
import { callbackHandler, Endpoint, type WebhookArrival } from './receivers.js';
import { resources } from './run-resources.js';

/** How long a held-call run waits for a cancelled call's connection to close. */
export const CANCEL_CLOSE_WAIT_MS = 20_000;

/** The window in which a held-call run measures the cost of holding alone. */
export const STEADY_HOLD_MS = 5_000;

export interface ConcurrencyResult {
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
  log(
    `  ${hold.arrivals} arrived, ${heldWhenMeasured} held open now (peak ${hold.peakOpen}); worker RSS ${mb(whenHeld)} MB (before ${mb(before)} MB)`,
  );

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

/**
 * Every held-call run in turn, each result pushed to `results` as soon as it is in (a later run
 * that fails leaves the earlier ones in the report), each one's oddities added to `findings`.
 */
export async function runHeldCalls(
  specs: readonly ConcurrencySpec[],
  api: ApiClient,
  webhookUrl: string,
  webhooks: Map<string, WebhookArrival>,
  sampler: Sampler,
  assertAlive: () => void,
  results: ConcurrencyResult[],
  findings: string[],
): Promise<void> {
  for (const spec of specs) {
    const result = await concurrencyRun(spec, api, webhookUrl, webhooks, sampler, assertAlive);
    results.push(result);
    log(
      `  N=${spec.n}/${spec.origins} origin(s): peak held ${result.peakHeld}, worker RSS ${result.workerRssMb.before} → ${result.workerRssMb.whenHeld} MB (peak ${result.workerRssMb.peak}), ` +
        `cancel→close p50/max ${result.cancel.toCloseMs.p50}/${result.cancel.toCloseMs.max} ms, outcomes ${JSON.stringify(result.outcomes)}, stuck ${result.stuck}, ${result.totalSec} s`,
    );
    if (result.stuck > 0)
      findings.push(
        `Held-call run N=${spec.n}: ${result.stuck} task(s) never delivered a webhook (e.g. ${result.stuckIds.slice(0, 3).join(', ')})`,
      );
    if (result.cancel.notClosed > 0)
      findings.push(
        `Held-call run N=${spec.n}: ${result.cancel.notClosed} of ${result.cancel.sampled} cancelled calls were not cut off within ${CANCEL_CLOSE_WAIT_MS / 1000} s`,
      );
    if (result.peakHeld < result.created) {
      findings.push(
        `Held-call run N=${spec.n} over ${spec.origins} origin(s): at most ${result.peakHeld} of ${result.created} calls were open at the receiver at once; ` +
          `arrivals stalled at ${result.arrivals - result.answeredAtOnce} (the rest reached the receiver only after held calls were answered)` +
          (spec.origins === 1 && result.peakHeld === 256
            ? ". 256 = the worker's per-origin connection limit (src/worker.ts: guard.createDispatcher({ connections: 256 })): calls beyond it wait in undici's queue, their attempt timeout running"
            : ''),
      );
    }
    if (Object.keys(result.createErrors).length > 0)
      findings.push(`Held-call run N=${spec.n}: create errors ${JSON.stringify(result.createErrors)}`);
    await sleep(2_000);
  }
}
