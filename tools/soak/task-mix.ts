/**
 * The soak's task mix: six kinds of task, each with the callback behaviour it asks the receiver
 * for and the ending it must reach whatever faults hit it, drawn by weight from the seeded stream.
 */
import type { TaskView } from '../../src/api/tasks/task-service.js';
import type { Rng } from './seeded-random.js';

export type Kind = 'succeeding' | 'failing' | 'flaky' | 'slow' | 'cancelled' | 'delayed';
export type Ending = 'succeeded' | 'failed' | 'cancelled';
export const ENDINGS: readonly string[] = ['succeeded', 'failed', 'cancelled'];

export interface KindSpec {
  weight: number;
  callbackPath: string;
  /** Enough retries that a task hit by a worker or server kill still gets its real answer. */
  retries: number;
  timeout: number;
  expect: Ending;
  /** Callback requests the task needs without faults; more are duplicates caused by kills. */
  expectedCallbacks: number;
}

export const KINDS: Record<Kind, KindSpec> = {
  succeeding: { weight: 34, callbackPath: '/cb/succeed', retries: 5, timeout: 10, expect: 'succeeded', expectedCallbacks: 1 },
  failing: { weight: 12, callbackPath: '/cb/fail', retries: 5, timeout: 10, expect: 'failed', expectedCallbacks: 1 },
  flaky: { weight: 14, callbackPath: '/cb/flaky', retries: 5, timeout: 10, expect: 'succeeded', expectedCallbacks: 2 },
  slow: { weight: 14, callbackPath: '/cb/slow', retries: 5, timeout: 15, expect: 'succeeded', expectedCallbacks: 1 },
  // The callback hangs; only the cancel ends the task (or, if the cancel never lands, the timeout).
  cancelled: { weight: 12, callbackPath: '/cb/hang', retries: 2, timeout: 30, expect: 'cancelled', expectedCallbacks: 1 },
  delayed: { weight: 14, callbackPath: '/cb/delayed', retries: 5, timeout: 10, expect: 'succeeded', expectedCallbacks: 1 },
};
export const KIND_NAMES = Object.keys(KINDS) as Kind[];
const KIND_WEIGHTS = Object.fromEntries(KIND_NAMES.map((kind) => [kind, KINDS[kind].weight])) as Record<Kind, number>;

/** Share of tasks whose webhook endpoint answers 503 to the first delivery. */
const FLAKY_WEBHOOK_SHARE = 0.3;

export interface CreateBody {
  callbackUrl: string;
  payload: { marker: string; kind: Kind; slowMs?: number };
  webhookUrl: string;
  retries: number;
  timeout: number;
  delay: number;
}

export type CancelOutcome = 'accepted' | 'already-ended' | 'gave-up' | 'not-found';

/** One task of the soak, from the first create request to its final view. */
export interface SoakTask {
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

export function newTask(seq: number, runId: string, rng: Rng, receiverUrl: (path: string) => string): SoakTask {
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
