/**
 * `/complete` and `/fail`: they end the attempt that awaits async completion, the
 * `awaitCompletion` activity the workflow holds on the server after the callee's `202` +
 * `AsyncQueue-Completion: async`, through Temporal's async activity completion by id.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { ActivityNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import {
  ASYNC_ACCEPTED_STATUS,
  AWAIT_COMPLETION_ACTIVITY,
  CALLBACK_ACTIVITY,
  CallbackErrorType,
  isTerminal,
  workflowIdForTask,
  type AsyncCompletion,
  type JsonValue,
} from '../../../workflows/task-contract.js';
import { CompletionNotReadyError, NotAwaitingCompletionError, PayloadTooLargeError } from '../../shared/errors.js';
import type { TemporalCalls } from '../temporal/temporal-calls.js';
import { decodePayload, taskMemo } from './list-query.js';

const { PendingActivityState } = proto.temporal.api.enums.v1;

/**
 * A callee may call `/complete` a moment after its `202`, before the workflow has begun to
 * await completion: for this long the API waits for the wait to begin, then answers 503.
 */
const AWAIT_BEGIN_TIMEOUT_MS = 5_000;
const AWAIT_BEGIN_POLL_MS = 50;
/** Started, workflow task scheduled, started, completed: the call is scheduled with the next event. */
const FIRST_SCHEDULE_EVENTS = 4;

export type AttemptOutcome = { result: JsonValue } | { error: { message: string; code?: string }; retryable: boolean };

export class AsyncCompletions {
  constructor(
    private readonly calls: TemporalCalls,
    /** The largest result, encoded: the same limit as a callback's answer. */
    private readonly maxResultBytes: number,
  ) {}

  /**
   * Ends the callback attempt that awaits async completion (its callback answered `202` with
   * `AsyncQueue-Completion: async`): with a result, as if the callback had answered 2xx; or with
   * an error, retried unless `retryable` is false, as if it had answered 5xx / 4xx.
   */
  async complete(id: string, outcome: AttemptOutcome): Promise<void> {
    if ('result' in outcome) {
      const bytes = Buffer.byteLength(JSON.stringify(outcome.result));
      if (bytes > this.maxResultBytes) {
        throw new PayloadTooLargeError('result', `encodes to ${bytes} bytes; a result may be at most ${this.maxResultBytes}`);
      }
    }
    const { activity, attempt, legacy } = await this.awaitingAttempt(id);
    await this.calls
      .rpc(
        async () => {
          if ('result' in outcome) {
            // Attempts awaited by a worker's keep-alive (before awaitCompletion existed) end as the
            // callback activity itself, with its outcome.
            const completion = legacy
              ? { attempt, statusCode: ASYNC_ACCEPTED_STATUS, result: outcome.result }
              : ({ result: outcome.result } satisfies AsyncCompletion);
            await this.calls.client.activity.complete(activity, completion);
          } else {
            await this.calls.client.activity.fail(
              activity,
              ApplicationFailure.create({
                type: CallbackErrorType.ReportedFailure,
                message: outcome.error.message,
                nonRetryable: !outcome.retryable,
                details: [{ attempt, code: outcome.error.code ?? 'callback_reported_failure' }],
              }),
            );
          }
        },
        { taskId: id, sizeField: 'result' },
      )
      .catch((err: unknown) => {
        if (err instanceof ActivityNotFoundError) throw new NotAwaitingCompletionError(id);
        throw err;
      });
  }

  /** The attempt awaiting completion; waits briefly when the callee's `202` is still on its way. */
  private async awaitingAttempt(
    id: string,
  ): Promise<{ activity: { workflowId: string; runId: string; activityId: string }; attempt: number; legacy: boolean }> {
    const deadline = Date.now() + AWAIT_BEGIN_TIMEOUT_MS;
    for (;;) {
      const description = await this.calls.describe(id);
      const memo = taskMemo(description);
      if (description.status.name !== 'RUNNING') throw new NotAwaitingCompletionError(id);
      const pending = description.raw.pendingActivities ?? [];
      const started = (name: string) =>
        pending.find(
          (activity) =>
            activity.activityType?.name === name && activity.state === PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
        );
      const waiting = started(AWAIT_COMPLETION_ACTIVITY);
      const call = started(CALLBACK_ACTIVITY);
      const legacy =
        call !== undefined &&
        decodePayload<{ awaitingCompletion?: boolean }>(call.heartbeatDetails?.payloads?.[0])?.awaitingCompletion === true;
      const found = waiting ?? (legacy ? call : undefined);
      if (found?.activityId != null) {
        const activity = { workflowId: workflowIdForTask(id), runId: description.runId, activityId: found.activityId };
        return { activity, attempt: legacy ? (found.attempt ?? 1) : memo.attempts, legacy };
      }
      // Not yet, perhaps: the call that answered 202 is still finishing, or the wait is being
      // scheduled. But not before the first call, nor while a call waits to start or retry.
      const waitsForCall = pending.some(
        (activity) =>
          activity.activityType?.name === CALLBACK_ACTIVITY &&
          activity.state !== PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
      );
      // No activity pending and none ever scheduled (the first workflow task schedules the call):
      // a task that has not been called yet cannot await its completion.
      const neverCalled = pending.length === 0 && memo.attempts === 0 && description.historyLength <= FIRST_SCHEDULE_EVENTS;
      if (memo.status === 'scheduled' || memo.status === 'retrying' || isTerminal(memo.status) || waitsForCall || neverCalled) {
        throw new NotAwaitingCompletionError(id);
      }
      // Still beginning: a worker died mid-way and Temporal hands its work on after the workflow
      // task timeout (10 s by default). Not a 409: the callee should try again in a moment.
      if (Date.now() >= deadline) throw new CompletionNotReadyError(id);
      await delay(AWAIT_BEGIN_POLL_MS);
    }
  }
}
