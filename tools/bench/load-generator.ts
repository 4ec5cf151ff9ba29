/**
 * The open-model load generator: creates go out on the wall clock's schedule, `rate` a second,
 * whatever the answers do, so a slow system shows as latency and backlog instead of slowing the
 * load down (a closed loop would hide exactly the queueing the benchmark is after).
 */
import { sleep } from '../shared/timing.js';
import { now } from './clock.js';
import type { CreateResult, Target } from './targets/target.js';

export interface StepRecord {
  intendedAt: number;
  sentAt: number;
  answeredAt?: number;
  result?: CreateResult;
}

export interface SentLoad {
  records: StepRecord[];
  /** Creates not answered yet. */
  inFlight: Set<Promise<void>>;
  /** When the first create was due. */
  t0: number;
  lastSentAt: number;
}

/** Sends `rate × stepMs` creates on schedule; returns once the last is sent, not answered. */
export async function sendAtRate(target: Target, rate: number, stepMs: number, stepTag: string): Promise<SentLoad> {
  const total = Math.max(1, Math.round((rate * stepMs) / 1000));
  const records: StepRecord[] = [];
  const inFlight = new Set<Promise<void>>();
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
  return { records, inFlight, t0, lastSentAt };
}
