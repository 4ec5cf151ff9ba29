/**
 * Staged attempts of flow-controlled tasks (workflows/flow-controlled-callback.ts): the activity
 * starts while its task still waits for a slot and parks in this worker (slot-relay.ts) until an
 * attempt of the same key ending here hands it its slot, or the limiter's grant starts it; then it
 * is an ordinary attempt. Parked, it beats so its worker's death is found, stands down on an
 * unstage, a cancel or its time limit, and then reports that no call was made.
 */
import { Context } from '@temporalio/activity';
import type { CallbackOutcome, CallbackRequest } from '../workflows/task-contract.js';
import {
  STAGED_PARK_LIMIT_MS,
  STAND_DOWN_PARK_LIMIT,
  STAND_DOWN_UNSTAGED,
  type StagedStoodDown,
  type WakeParkedAnswer,
  type WakeParkedRequest,
} from '../workflows/staged-attempt-contract.js';
import { heartbeatIntervalMs } from './heartbeats.js';
import type { HeldCalls } from './held-calls.js';
import type { ParkEnd, ParkedAttempt, SlotRelay } from './slot-relay.js';

export function createStagedAttempts(
  relay: SlotRelay,
  heldCalls: HeldCalls,
  callCallback: (request: CallbackRequest) => Promise<CallbackOutcome>,
) {
  return {
    async callCallbackStaged(request: CallbackRequest): Promise<CallbackOutcome | StagedStoodDown> {
      const slot = request.flowSlot;
      if (slot?.staged === undefined) throw new Error('callCallbackStaged needs a staged flow slot');
      const context = Context.current();
      relay.enter(request.taskId);
      try {
        const how = await park(context, slot.key, { taskId: request.taskId, request: slot.request, ...slot.staged });
        // Reported as done, whatever made it stand down (a cancel of the task's included: its
        // workflow then ends it cancelled), so that no park ever counts as a failed attempt.
        if (how.kind === 'stoodDown')
          return { kind: 'stoodDown', reason: how.reason, ...(how.seq !== undefined ? { seq: how.seq } : {}) };
        // From here its beats (the call's own) tell the API its call has begun (task-phase.ts).
        return await callCallback(request);
      } finally {
        relay.leave(request.taskId);
      }
    },

    /** Runs on the holding worker's own task queue (locateHeldCall): starts or stands down the task's parked attempt. */
    async wakeParkedAttempt(request: WakeParkedRequest): Promise<WakeParkedAnswer> {
      const how: ParkEnd = request.start ? { kind: 'go' } : { kind: 'stoodDown', reason: STAND_DOWN_UNSTAGED };
      const woken = request.start
        ? relay.start(request.taskId, request.request)
        : relay.standDown(request.taskId, STAND_DOWN_UNSTAGED);
      if (woken) return 'woken';
      if (relay.isRunning(request.taskId) || heldCalls.holds(request.taskId)) return 'calling';
      // Older workflow code names no activity: it cancels what is absent, as it always did.
      if (request.activityId === undefined) return 'absent';
      // The server says this worker runs it, but it has not begun here yet: it parks soon, and
      // the wake then applies. Never cancelled for it: a cancel reaches a started attempt only
      // through its beats, while a hand-over here could reach it first.
      relay.wakeEarly(request.taskId, request.activityId, how);
      return 'pending';
    },
  };

  /** Parks the attempt until it is handed a slot or stands down (unstaged, a cancel, its time limit). */
  async function park(context: Context, key: string, attempt: ParkedAttempt): Promise<ParkEnd> {
    const parked = relay.park(key, attempt, context.info.activityId);
    // A cancel of the task reaches a parked attempt as it reaches a call (abortHeldCall).
    const watched = heldCalls.hold(attempt.taskId);
    const standDown = (reason: string) => () => relay.standDown(attempt.taskId, reason);
    const onCutOff = standDown('cancelled');
    watched.signal.addEventListener('abort', onCutOff);
    context.cancellationSignal.addEventListener('abort', onCutOff);
    const limit = setTimeout(standDown(STAND_DOWN_PARK_LIMIT), STAGED_PARK_LIMIT_MS);
    // No beat now: a pending staged attempt without one counts as parked, and most parks are short.
    const beat = setInterval(() => context.heartbeat({ parked: true }), heartbeatIntervalMs(context.info.heartbeatTimeoutMs));
    try {
      return await parked;
    } finally {
      clearInterval(beat);
      clearTimeout(limit);
      watched.signal.removeEventListener('abort', onCutOff);
      context.cancellationSignal.removeEventListener('abort', onCutOff);
      watched.release();
    }
  }
}
