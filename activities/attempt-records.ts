/**
 * The record of each attempt the activities make (workflows/attempt-record.ts), and where it goes:
 * the caller returns it with a success, or attaches it to a final failure; a failure Temporal will
 * retry is recorded by an `attemptRecorded` signal to the activity's own workflow, since the
 * history keeps only the last failure of a retried activity.
 */
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure, type ApplicationFailureOptions } from '@temporalio/common';
import {
  RECORDED_BODY_BYTES,
  RECORDED_RESPONSE_HEADERS,
  attemptRecordedSignal,
  type AttemptKind,
  type AttemptOutcomeName,
  type AttemptRecord,
  type RecordedResponse,
} from '../workflows/attempt-record.js';
import type { AttemptFailureDetails } from '../workflows/task-contract.js';
import { DestinationBlockedError } from './errors.js';
import { NetworkError, RequestAbortedError, RequestTimeoutError, type OutgoingResponse } from './outgoing-request.js';

/** A signal that cannot be sent in this long is given up: the record then goes with the failure. */
const SIGNAL_TIMEOUT_MS = 5_000;

/** When an attempt started, by the wall clock and by a monotonic one for its duration. */
export class AttemptClock {
  private readonly startedAt = new Date();
  private readonly started = performance.now();

  times(): Pick<AttemptRecord, 'startedAt' | 'endedAt' | 'durationMs'> {
    const durationMs = Math.round(performance.now() - this.started);
    return {
      startedAt: this.startedAt.toISOString(),
      endedAt: new Date(this.startedAt.getTime() + durationMs).toISOString(),
      durationMs,
    };
  }
}

export interface AttemptBase {
  kind: AttemptKind;
  attempt: number;
  clock: AttemptClock;
}

export function attemptRecord(
  base: AttemptBase,
  outcome: AttemptOutcomeName,
  extra: Pick<AttemptRecord, 'statusCode' | 'error'> & { response?: OutgoingResponse },
): AttemptRecord {
  return {
    kind: base.kind,
    attempt: base.attempt,
    ...base.clock.times(),
    outcome,
    ...(extra.statusCode !== undefined ? { statusCode: extra.statusCode } : {}),
    ...(extra.error !== undefined ? { error: extra.error } : {}),
    ...(extra.response !== undefined ? { response: recordedResponse(extra.response) } : {}),
  };
}

/** The kept headers and the first 4 KiB of the body, cut at a character boundary. */
export function recordedResponse(response: OutgoingResponse): RecordedResponse {
  const headers: Record<string, string> = {};
  for (const name of RECORDED_RESPONSE_HEADERS) {
    const value = response.headers[name];
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) headers[name] = first;
  }
  const body = response.body;
  const truncated = body.length > RECORDED_BODY_BYTES || response.bodyTruncated === true;
  let end = Math.min(body.length, RECORDED_BODY_BYTES);
  // Back off a UTF-8 continuation byte (10xxxxxx) cut from its character.
  if (end < body.length) while (end > 0 && (body[end]! & 0xc0) === 0x80) end--;
  return { headers, body: body.subarray(0, end).toString('utf8'), truncated };
}

/** What a failed request's error says about the attempt. */
export function outcomeOfError(err: unknown): AttemptOutcomeName {
  if (err instanceof RequestTimeoutError) return 'timeout';
  if (err instanceof DestinationBlockedError) return 'blocked';
  if (err instanceof RequestAbortedError) return 'cancelled';
  if (err instanceof NetworkError) return 'network_error';
  return 'failed';
}

/**
 * The ApplicationFailure an attempt fails with, its record placed where the history keeps it: in a
 * signal when Temporal will retry (only the last failure is kept), in the details otherwise. A
 * signal that cannot be sent leaves the record in the details too (the next attempt's started
 * event and the server's pending-activity state keep the last failure).
 */
export async function failAttempt(
  options: ApplicationFailureOptions & { details: [AttemptFailureDetails] },
  record: AttemptRecord,
): Promise<ApplicationFailure> {
  const signalled = !options.nonRetryable && temporalWillRetry() && (await signalRecord(record));
  return ApplicationFailure.create({
    ...options,
    details: signalled ? options.details : [{ ...options.details[0], record }],
  });
}

/**
 * An attempt cut off because its worker is stopping (graceful shutdown, past the grace time):
 * the SDK reports it as a retryable `WorkerShutdown` failure of its own, without our details, so
 * its record can only go by signal.
 */
export async function recordIfWorkerShutdown(base: AttemptBase): Promise<void> {
  const reason: unknown = Context.current().cancellationSignal.reason;
  if (!(reason instanceof CancelledFailure) || reason.message !== WORKER_SHUTDOWN || !temporalWillRetry()) return;
  const error = { code: 'worker_shutdown', message: 'the worker stopped during the attempt (a deploy or restart)' };
  await signalRecord(attemptRecord(base, 'failed', { error }));
}
const WORKER_SHUTDOWN = 'WORKER_SHUTDOWN';

/** Whether the retry policy allows another attempt after this one (an attempt limit of 0 is none). */
function temporalWillRetry(): boolean {
  const { attempt, retryPolicy } = Context.current().info;
  const maximum = retryPolicy?.maximumAttempts ?? 0;
  return maximum === 0 || attempt < maximum;
}

async function signalRecord(record: AttemptRecord): Promise<boolean> {
  const context = Context.current();
  const execution = context.info.workflowExecution;
  if (execution === undefined) return false;
  const { workflowId, runId } = execution;
  const { client } = context;
  try {
    await client.connection.withDeadline(Date.now() + SIGNAL_TIMEOUT_MS, () =>
      client.workflow.getHandle(workflowId, runId).signal(attemptRecordedSignal, record),
    );
    return true;
  } catch (err) {
    log.warn('attempt record not signalled; it goes with the failure', {
      workflowId,
      attempt: record.attempt,
      error: String(err),
    });
    return false;
  }
}
