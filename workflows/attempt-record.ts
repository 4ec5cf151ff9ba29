/**
 * One callback or webhook attempt as the activity that made it saw it (`GET /v1/tasks/{id}/attempts`).
 *
 * Temporal keeps only the last failure of a retried activity, so each record travels where the
 * history keeps it: a successful attempt's in the activity's result, a final failure's in the
 * failure's details, and only an attempt Temporal will retry in an `attemptRecorded` signal the
 * activity sends to its own workflow before it fails. The happy path so costs no extra event.
 * Deterministic and free of I/O: the workflow bundle imports it.
 */
import { defineSignal } from '@temporalio/workflow';

export type AttemptKind = 'callback' | 'webhook';

export const ATTEMPT_OUTCOMES = [
  'succeeded',
  'failed',
  'timeout',
  'network_error',
  'blocked',
  'cancelled',
  'awaiting_completion',
  'in_progress',
] as const;
export type AttemptOutcomeName = (typeof ATTEMPT_OUTCOMES)[number];

/** The response headers an attempt record keeps (lower case); nothing else of the response's. */
export const RECORDED_RESPONSE_HEADERS = ['content-type', 'retry-after', 'x-request-id'] as const;
/** How much of a response body a record keeps, in bytes of UTF-8. */
export const RECORDED_BODY_BYTES = 4 * 1024;

export interface RecordedResponse {
  headers: Record<string, string>;
  /** The first RECORDED_BODY_BYTES of the body, as text. */
  body: string;
  truncated: boolean;
}

export interface AttemptRecord {
  kind: AttemptKind;
  /** 1-based, as the request's `AsyncQueue-Attempt` header said. */
  attempt: number;
  /** The worker's clock. */
  startedAt: string;
  endedAt: string;
  durationMs: number;
  outcome: AttemptOutcomeName;
  statusCode?: number;
  error?: { code: string; message: string };
  response?: RecordedResponse;
}

/** Sent by an activity whose failed attempt Temporal will retry; the workflow only lets it land. */
export const attemptRecordedSignal = defineSignal<[AttemptRecord]>('attemptRecorded');
export const ATTEMPT_RECORDED_SIGNAL = 'attemptRecorded';
