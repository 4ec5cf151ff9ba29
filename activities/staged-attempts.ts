/**
 * Staged attempts of flow-controlled tasks (workflows/flow-controlled-callback.ts): the activity
 * starts while its task still waits for a slot and parks in this worker (slot-relay.ts) until an
 * attempt of the same key ending here hands it its slot, or the limiter's grant starts it; then it
 * is an ordinary attempt. Parked, it beats so its worker's death is found, stands down on an
 * unstage, a cancel or its time limit, and then reports that no call was made.
 */
import { Context, log } from '@temporalio/activity';
import type {
  CallbackOutcome,
  CallbackRequest,
  StagedStoodDown,
  WakeParkedAnswer,
  WakeParkedRequest,
} from '../workflows/task-contract.js';
import { STAGED_PARK_LIMIT_MS } from '../workflows/flow-control-contract.js';
import type { HeldCalls } from './held-calls.js';
import type { SlotRelay } from './slot-relay.js';

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
      const parked = relay.park(slot.key, { taskId: request.taskId, request: slot.request, ...slot.staged });
      // A cancel of the task reaches a parked attempt as it reaches a call (abortHeldCall).
      const watched = heldCalls.hold(request.taskId);
      const standDown = (reason: string) => () => relay.standDown(request.taskId, reason);
      const onCutOff = standDown('cancelled');
      watched.signal.addEventListener('abort', onCutOff);
      context.cancellationSignal.addEventListener('abort', onCutOff);
      const limit = setTimeout(standDown('park limit'), STAGED_PARK_LIMIT_MS);
      // No beat now: a pending staged attempt without one counts as parked, and most parks are short.
      const beat = setInterval(
        () => context.heartbeat({ parked: true }),
        Math.max(100, 0.4 * (context.info.heartbeatTimeoutMs ?? 30_000)),
      );
      let how: Awaited<typeof parked>;
      try {
        how = await parked;
      } finally {
        clearInterval(beat);
        clearTimeout(limit);
        watched.signal.removeEventListener('abort', onCutOff);
        context.cancellationSignal.removeEventListener('abort', onCutOff);
        watched.release();
      }
      // Reported as done, whatever made it stand down (a cancel of the task's included: its
      // workflow then ends it cancelled), so that no park ever counts as a failed attempt.
      if (how.kind === 'stoodDown') return { kind: 'stoodDown', reason: how.reason };
      // From here its beats (the call's own) tell the API its call has begun (task-phase.ts).
      return callCallback(request);
    },

    /** Runs on the holding worker's own task queue (locateHeldCall): starts or stands down the task's parked attempt. */
    async wakeParkedAttempt(request: WakeParkedRequest): Promise<WakeParkedAnswer> {
      const woken = request.start ? relay.start(request.taskId, request.request) : relay.standDown(request.taskId, 'unstaged');
      if (woken) return 'woken';
      const answer = heldCalls.holds(request.taskId) ? 'calling' : 'absent';
      log.info('flow control: no parked attempt to wake', { taskId: request.taskId, answer });
      return answer;
    },
  };
}
