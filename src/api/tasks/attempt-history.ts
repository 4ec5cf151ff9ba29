/**
 * A task's attempts (`GET /v1/tasks/{id}/attempts`), read from its workflow's history and, while it
 * runs, the server's pending-activity state: no worker is asked, so ended tasks and tasks whose
 * workers are away read the same.
 *
 * Where each record is (workflows/attempt-record.ts): a successful attempt's in its activity's
 * result, a final failure's in the failure's details, an attempt Temporal retried in an
 * `attemptRecorded` signal. An async-completion attempt is the call's record (`awaiting_completion`)
 * ended by its `awaitCompletion` activity. What no record covers is made from what Temporal knows:
 * histories older than the records, an attempt whose worker died (Temporal's heartbeat timeout
 * ends it: `timeout`, code `heartbeat_timeout`), an attempt still running (`in_progress`).
 */
import proto, { type temporal } from '@temporalio/proto';
import {
  ATTEMPT_RECORDED_SIGNAL,
  type AttemptKind,
  type AttemptOutcomeName,
  type AttemptRecord,
} from '../../../workflows/attempt-record.js';
import {
  ASYNC_ACCEPTED_STATUS,
  AWAIT_COMPLETION_ACTIVITY,
  CALLBACK_ACTIVITY,
  WEBHOOK_ACTIVITY,
  callbackAttemptsBefore,
  type AttemptFailureDetails,
} from '../../../workflows/task-contract.js';
import { CALLBACK_STAGED_ACTIVITY } from '../../../workflows/staged-attempt-contract.js';
import { decodePayload } from './list-query.js';
import { timestampToIso } from '../../../activities/task-phase.js';

const { PendingActivityState, TimeoutType } = proto.temporal.api.enums.v1;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type PendingActivity = temporal.api.workflow.v1.IPendingActivityInfo;
type Failure = temporal.api.failure.v1.IFailure;

/** One attempt as the API shows it: times and duration are null while the attempt is open. */
export interface AttemptView extends Omit<AttemptRecord, 'startedAt' | 'endedAt' | 'durationMs'> {
  startedAt: string | null;
  endedAt: string | null;
  durationMs: number | null;
}

/** One scheduled activity of the task: which attempts it covers and what its started event said. */
interface Schedule {
  kind: AttemptKind | 'await';
  /** Attempts made before it was scheduled (callCallback after an async attempt failed). */
  before: number;
  /** awaitCompletion: the attempt it ends. */
  awaits?: number;
  startedAttempt?: number;
  startedAt?: string;
  /** A staged attempt (callCallbackStaged): while parked it is no attempt, and may end as none. */
  staged?: boolean;
}

const ERROR_CODE_OUTCOMES: Record<string, AttemptOutcomeName> = {
  callback_timeout: 'timeout',
  heartbeat_timeout: 'timeout',
  network_error: 'network_error',
  destination_blocked: 'blocked',
  cancelled: 'cancelled',
};

export function attemptsFromHistory(events: readonly HistoryEvent[], pending: readonly PendingActivity[]): AttemptView[] {
  const records = new Map<string, AttemptView>();
  const key = (kind: AttemptKind, attempt: number): string => `${kind}:${attempt}`;
  /** A record the activity made wins over one made from what Temporal knows. */
  const put = (view: AttemptView, { weak = false } = {}): void => {
    const id = key(view.kind, view.attempt);
    if (!weak || !records.has(id)) records.set(id, view);
  };
  const schedules = new Map<string, Schedule>();
  const byActivityId = new Map<string, Schedule>();

  /** An async-completion attempt's end, from its awaitCompletion activity. */
  const endAwaited = (schedule: Schedule, endedAt: string | undefined, outcome: AttemptOutcomeName, error?: Failure): void => {
    if (schedule.awaits === undefined) return;
    const id = key('callback', schedule.awaits);
    const call = records.get(id) ?? unrecorded('callback', schedule.awaits, 'awaiting_completion');
    const details = error !== undefined ? failureDetails(error) : undefined;
    records.set(id, {
      ...call,
      outcome,
      endedAt: endedAt ?? null,
      durationMs: call.startedAt !== null && endedAt !== undefined ? elapsed(call.startedAt, endedAt) : null,
      ...(error !== undefined ? { error: { code: details?.code ?? errorCode(error), message: error.message ?? '' } } : {}),
    });
  };

  for (const event of events) {
    const at = timestampToIso(event.eventTime);
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const kind = activityKind(scheduled.activityType?.name);
      if (kind === undefined) continue;
      const schedule: Schedule = { kind, before: kind === 'callback' ? callbackAttemptsBefore(scheduled.activityId) : 0 };
      if (scheduled.activityType?.name === CALLBACK_STAGED_ACTIVITY) schedule.staged = true;
      if (kind === 'await') schedule.awaits = decodePayload<{ attempt?: number }>(scheduled.input?.payloads?.[0])?.attempt;
      schedules.set(String(event.eventId), schedule);
      if (scheduled.activityId) byActivityId.set(scheduled.activityId, schedule);
      continue;
    }
    const signal = event.workflowExecutionSignaledEventAttributes;
    if (signal?.signalName === ATTEMPT_RECORDED_SIGNAL) {
      const record = decodePayload<AttemptRecord>(signal.input?.payloads?.[0]);
      if (record !== undefined) put(record);
      continue;
    }
    const started = event.activityTaskStartedEventAttributes;
    if (started) {
      const schedule = schedules.get(String(started.scheduledEventId));
      if (schedule === undefined) continue;
      schedule.startedAttempt = started.attempt ?? 1;
      if (at !== undefined) schedule.startedAt = at;
      if (schedule.kind !== 'await' && started.lastFailure && schedule.startedAttempt > 1) {
        put(fromFailure(schedule.kind, schedule.before + schedule.startedAttempt - 1, started.lastFailure), { weak: true });
      }
      continue;
    }
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) {
      const schedule = schedules.get(String(completed.scheduledEventId));
      if (schedule === undefined) continue;
      if (schedule.kind === 'await') {
        endAwaited(schedule, at, 'succeeded');
        continue;
      }
      const value = decodePayload<{ attempt?: number; statusCode?: number; kind?: string; record?: AttemptRecord }>(
        completed.result?.payloads?.[0],
      );
      if (value?.record !== undefined) {
        put(value.record);
      } else if (value?.attempt !== undefined) {
        // A history from before the records: what the result and the events say.
        const outcome = value.kind === 'accepted' ? 'awaiting_completion' : 'succeeded';
        put({
          ...unrecorded(schedule.kind, value.attempt, outcome),
          ...timesOf(schedule.startedAt, at),
          // An accepted call answered 202 (+ AsyncQueue-Completion: async), which its result does not repeat.
          ...(value.kind === 'accepted' ? { statusCode: ASYNC_ACCEPTED_STATUS } : {}),
          ...(value.statusCode !== undefined ? { statusCode: value.statusCode } : {}),
        });
      }
      continue;
    }
    const failed = event.activityTaskFailedEventAttributes;
    if (failed) {
      const schedule = schedules.get(String(failed.scheduledEventId));
      if (schedule === undefined || !failed.failure) continue;
      if (schedule.kind === 'await') {
        endAwaited(schedule, at, 'failed', failed.failure);
        continue;
      }
      const details = failureDetails(failed.failure);
      if (details?.record !== undefined) {
        put(details.record);
      } else {
        const attempt = details?.attempt ?? schedule.before + (schedule.startedAttempt ?? 1);
        put({ ...fromFailure(schedule.kind, attempt, failed.failure), ...timesOf(schedule.startedAt, at) }, { weak: true });
      }
      continue;
    }
    const timedOut = event.activityTaskTimedOutEventAttributes;
    if (timedOut) {
      const schedule = schedules.get(String(timedOut.scheduledEventId));
      if (schedule === undefined || !timedOut.failure) continue;
      if (schedule.kind === 'await') {
        endAwaited(schedule, at, 'timeout', timedOut.failure);
        continue;
      }
      // Timed out while an attempt ran (its worker died, or the attempt outlived its limit); one
      // that timed out waiting to retry has its last attempt recorded already.
      if (timedOut.startedEventId == null || Number(timedOut.startedEventId) === 0 || schedule.startedAttempt === undefined) {
        continue;
      }
      // A staged attempt whose worker died while it was parked made no call.
      if (
        schedule.staged === true &&
        parkedAtLastBeat(timedOut.failure.timeoutFailureInfo?.lastHeartbeatDetails?.payloads?.[0])
      ) {
        continue;
      }
      const attempt = schedule.before + schedule.startedAttempt;
      put({ ...fromFailure(schedule.kind, attempt, timedOut.failure), ...timesOf(schedule.startedAt, at) }, { weak: true });
      continue;
    }
    const canceled = event.activityTaskCanceledEventAttributes;
    if (canceled) {
      const schedule = schedules.get(String(canceled.scheduledEventId));
      if (schedule === undefined) continue;
      if (schedule.kind === 'await') {
        endAwaited(schedule, at, 'cancelled');
        continue;
      }
      const details = decodePayload<AttemptFailureDetails>(canceled.details?.payloads?.[0]);
      if (details?.record !== undefined) {
        put(details.record);
      } else if (schedule.staged === true) {
        // Cancelled while parked: no call was made (a cut-off call ends with its record).
        continue;
      } else if (Number(canceled.startedEventId ?? 0) !== 0 && schedule.startedAttempt !== undefined) {
        const attempt = details?.attempt ?? schedule.before + schedule.startedAttempt;
        put(
          {
            ...unrecorded(schedule.kind, attempt, 'cancelled'),
            ...timesOf(schedule.startedAt, at),
            error: { code: 'cancelled', message: 'the attempt was cut off by the task being cancelled' },
          },
          { weak: true },
        );
      }
    }
  }

  // What is running now, and the last failure the server holds for an activity waiting to retry.
  for (const activity of pending) {
    const schedule = activity.activityId ? byActivityId.get(activity.activityId) : undefined;
    if (schedule === undefined || schedule.kind === 'await') continue;
    const serverAttempt = activity.attempt ?? 1;
    // A staged attempt is one only once its call has begun (its beats say so).
    if (
      schedule.staged === true &&
      (activity.heartbeatDetails == null || parkedAtLastBeat(activity.heartbeatDetails.payloads?.[0]))
    ) {
      continue;
    }
    const running =
      activity.state === PendingActivityState.PENDING_ACTIVITY_STATE_STARTED ||
      activity.state === PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED;
    if (running) {
      // Weak: the history, read after this state, may already hold the attempt's end.
      put(
        {
          ...unrecorded(schedule.kind, schedule.before + serverAttempt, 'in_progress'),
          startedAt: timestampToIso(activity.lastStartedTime) ?? null,
        },
        { weak: true },
      );
    }
    schedule.startedAttempt = running ? serverAttempt : serverAttempt - 1;
    if (activity.lastFailure && serverAttempt > 1) {
      put(fromFailure(schedule.kind, schedule.before + serverAttempt - 1, activity.lastFailure), { weak: true });
    }
  }

  // Attempts that left no record (their worker died before it could send one).
  for (const schedule of new Set(byActivityId.values())) {
    // A staged attempt's end, or its call in flight, is read above; its park left nothing to add.
    if (schedule.kind === 'await' || schedule.staged === true || schedule.startedAttempt === undefined) continue;
    for (let n = 1; n <= schedule.startedAttempt; n++) {
      put(
        {
          ...unrecorded(schedule.kind, schedule.before + n, 'timeout'),
          error: {
            code: 'attempt_unrecorded',
            message: 'the attempt left no record: the worker making it stopped (Temporal timed the attempt out)',
          },
        },
        { weak: true },
      );
    }
  }

  return [...records.values()]
    .map((view) => (view.outcome === 'awaiting_completion' ? { ...view, endedAt: null, durationMs: null } : view))
    .sort((a, b) => (a.kind === b.kind ? a.attempt - b.attempt : a.kind === 'callback' ? -1 : 1));
}

/** Between two times of different clocks (the worker's, the server's): never negative. */
function elapsed(from: string, to: string): number {
  return Math.max(0, Date.parse(to) - Date.parse(from));
}

function parkedAtLastBeat(payload: Parameters<typeof decodePayload>[0]): boolean {
  return decodePayload<{ parked?: boolean }>(payload)?.parked === true;
}

function activityKind(name: string | null | undefined): Schedule['kind'] | undefined {
  if (name === CALLBACK_ACTIVITY || name === CALLBACK_STAGED_ACTIVITY) return 'callback';
  if (name === WEBHOOK_ACTIVITY) return 'webhook';
  if (name === AWAIT_COMPLETION_ACTIVITY) return 'await';
  return undefined;
}

function unrecorded(kind: AttemptKind, attempt: number, outcome: AttemptOutcomeName): AttemptView {
  return { kind, attempt, startedAt: null, endedAt: null, durationMs: null, outcome };
}

function timesOf(
  startedAt: string | undefined,
  endedAt: string | undefined,
): Pick<AttemptView, 'startedAt' | 'endedAt' | 'durationMs'> {
  return {
    startedAt: startedAt ?? null,
    endedAt: endedAt ?? null,
    durationMs: startedAt !== undefined && endedAt !== undefined ? elapsed(startedAt, endedAt) : null,
  };
}

/** The details an activity attached to its failure (or to its last heartbeat, for a timeout). */
function failureDetails(failure: Failure): AttemptFailureDetails | undefined {
  const payload =
    failure.applicationFailureInfo?.details?.payloads?.[0] ?? failure.canceledFailureInfo?.details?.payloads?.[0] ?? undefined;
  return decodePayload<AttemptFailureDetails>(payload);
}

function errorCode(failure: Failure): string {
  const timeout = failure.timeoutFailureInfo?.timeoutType;
  if (timeout === TimeoutType.TIMEOUT_TYPE_HEARTBEAT) return 'heartbeat_timeout';
  if (timeout != null) return 'callback_timeout';
  const type = failure.applicationFailureInfo?.type;
  // The SDK's own failure for an attempt its stopping worker cut off.
  if (type === 'WorkerShutdown') return 'worker_shutdown';
  return type ?? 'failed';
}

/** An attempt made from a failure alone: its record when it carries one, else what it says. */
function fromFailure(kind: AttemptKind, attempt: number, failure: Failure): AttemptView {
  const details = failureDetails(failure);
  if (details?.record !== undefined) return details.record;
  const code = details?.code ?? errorCode(failure);
  const outcome = failure.timeoutFailureInfo != null ? 'timeout' : (ERROR_CODE_OUTCOMES[code] ?? 'failed');
  return {
    ...unrecorded(kind, attempt, outcome),
    ...(details?.statusCode !== undefined ? { statusCode: details.statusCode } : {}),
    error: { code, message: failure.message ?? '' },
  };
}
