/**
 * Flow control's two calls to Temporal from inside the worker: the limiter's check of the tasks it
 * believes hold a slot, and a task's re-creation of a limiter that is not running.
 */
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure, type SignalDefinition } from '@temporalio/common';
import { WorkflowNotFoundError } from '@temporalio/client';
import {
  DEFAULT_HOLDER_CHECK_INTERVAL_MS,
  acquireSlotSignal,
  configureFlowSignal,
  handOverSlotSignal,
  limiterStartOptions,
  limiterWorkflowId,
  releaseSlotSignal,
  slotGrantedSignal,
  slotStagedSignal,
  slotStartedSignal,
  type DeliverGrantsRequest,
  type SlotGrantDelivery,
  type ClosedHoldersRequest,
  type EnsureLimiterRequest,
  type LimiterSignalRequest,
} from '../workflows/flow-control-contract.js';
import {
  workflowIdForTask,
  type AttemptFailureDetails,
  type CallbackOutcome,
  type CallbackRequest,
} from '../workflows/task-contract.js';
import type { SlotRelay } from './slot-relay.js';
import { HandOverSignals } from './hand-over-signals.js';
import { heartbeatIntervalMs } from './heartbeats.js';

/** Describes at most this many workflows at once: a saturated key with many holders stays gentle on the server. */
const DESCRIBE_CONCURRENCY = 20;

export const createFlowControlActivities = (relay: SlotRelay) => ({
  /**
   * The limiter's grants and stage notices, signalled from here (see workflows/flow-limiter.ts);
   * those that found no running task. A grant for a staged attempt parked in this worker starts
   * it at once (and is not signalled), and a notice unstaging one stands it down.
   */
  async deliverSlotGrants(request: DeliverGrantsRequest): Promise<SlotGrantDelivery[]> {
    const { client } = Context.current();
    const gone: SlotGrantDelivery[] = [];
    const signal = async (taskId: string, request: number, send: () => Promise<void>): Promise<void> => {
      try {
        await send();
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) gone.push({ taskId, request });
        else throw err; // retried by the activity's policy
      }
    };
    await Promise.all([
      ...request.grants.map(async (grant) => {
        // Started here: the call begins now, and its task hears of it from its parked attempt's
        // outcome. A signal would only cost the task a workflow task of its own (the most common
        // grant of a staged line, in a drain's first waves); if this worker dies before its call
        // is known, the park's timeout has the task ask again, and the limiter re-sends the grant
        // of a slot the task holds (`again`).
        if (relay.start(grant.taskId, grant.request)) return;
        return signal(grant.taskId, grant.request, () =>
          client.workflow.getHandle(workflowIdForTask(grant.taskId)).signal(slotGrantedSignal, {
            request: grant.request,
            ...(grant.reportStart === true ? { reportStart: true } : {}),
          }),
        );
      }),
      ...(request.notices ?? []).map(({ taskId, request: stagedRequest, staged, seq, priority, createdAt }) => {
        if (!staged) relay.unstage(taskId, seq);
        else if (request.key !== undefined && priority !== undefined && createdAt !== undefined) {
          relay.expect(request.key, { taskId, request: stagedRequest, priority, createdAt });
        }
        return signal(taskId, stagedRequest, () =>
          client.workflow.getHandle(workflowIdForTask(taskId)).signal(slotStagedSignal, { request: stagedRequest, staged, seq }),
        );
      }),
    ]);
    return gone;
  },

  /**
   * Of the tasks a limiter believes hold a slot, those whose workflow is not running: stopped from
   * outside (terminated, reset) before it could release. Any other answer keeps the slot held.
   */
  async closedFlowHolders(request: ClosedHoldersRequest): Promise<string[]> {
    const { client } = Context.current();
    const closed: string[] = [];
    const queue = [...request.taskIds];
    const recent = new Set(request.recentlyGranted ?? []);
    const worker = async (): Promise<void> => {
      for (let taskId = queue.shift(); taskId !== undefined; taskId = queue.shift()) {
        try {
          const description = await client.workflow.getHandle(workflowIdForTask(taskId)).describe();
          if (description.status.name !== 'RUNNING') closed.push(taskId);
        } catch (err) {
          // A first slot is granted before its task starts: a recent grant's task may just not exist yet.
          if (err instanceof WorkflowNotFoundError && !recent.has(taskId)) closed.push(taskId);
          // Anything else (the server is busy): the slot stays held until the next check.
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DESCRIBE_CONCURRENCY, queue.length) }, worker));
    if (closed.length > 0) log.warn('flow control: dropping slots held by closed task workflows', { closed });
    return closed;
  },

  /** Signal-with-start: starts the key's limiter with the task's limits unless one is running. */
  async ensureFlowLimiter(request: EnsureLimiterRequest): Promise<void> {
    log.warn('flow control: the key has no running limiter; starting one', { key: request.key });
    await startLimiterWith(request, configureFlowSignal, {});
  },

  /**
   * A task's acquire or release, signalled from here rather than by its workflow: a workflow's
   * signal is a command the server relays through its transfer queue and then answers with an
   * event that costs the task a workflow task of its own; this costs a marker in the task's
   * history. An acquire that finds no limiter (an operator terminated it) starts one with it; a
   * release that finds none has nothing to give back.
   */
  async signalFlowLimiter(request: LimiterSignalRequest): Promise<void> {
    const limiter = Context.current().client.workflow.getHandle(limiterWorkflowId(request.key));
    try {
      if (request.acquire !== undefined) await limiter.signal(acquireSlotSignal, request.acquire);
      if (request.release !== undefined) await limiter.signal(releaseSlotSignal, request.release);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err; // retried by the activity's policy
      if (request.acquire === undefined) return;
      log.warn('flow control: the key has no running limiter; starting one', { key: request.key });
      await startLimiterWith(request, acquireSlotSignal, request.acquire);
    }
  },
});

/** Signal-with-start of the key's limiter, with these limits if it is not running. */
async function startLimiterWith<Arg>(
  request: { key: string; limits: EnsureLimiterRequest['limits'] },
  signal: SignalDefinition<[Arg]>,
  arg: Arg,
): Promise<void> {
  const { client, info } = Context.current();
  await client.workflow.signalWithStart('flowLimiterWorkflow', {
    ...limiterStartOptions(
      { key: request.key, limits: request.limits, paused: false, holderCheckIntervalMs: DEFAULT_HOLDER_CHECK_INTERVAL_MS },
      info.taskQueue,
    ),
    signal: signal.name,
    signalArgs: [arg],
  });
}

/**
 * The attempt's call begins: the limiter counts its start in the key's rate window from when it
 * takes this report (flow-limiter.ts), which is no earlier than the call began: it is sent as
 * the call begins, not awaited before it (no delay for the call). If it is lost, the slot's
 * release stamps the start instead, later, which only makes the window wait longer.
 */
async function reportCallStart(taskId: string, slot: { key: string; request: number }): Promise<void> {
  try {
    await Context.current()
      .client.workflow.getHandle(limiterWorkflowId(slot.key))
      .signal(slotStartedSignal, { taskId, request: slot.request });
  } catch (err) {
    log.warn('flow control: reporting the call start failed; the release stamps it', { taskId, error: String(err) });
  }
}

/**
 * A flow-controlled attempt gives its slot back from the worker as soon as its call is over, a
 * workflow task sooner than the task's workflow could. Best effort: false when it failed, and the
 * workflow then releases the slot itself (as it does after any attempt that failed).
 */
export async function releaseFlowSlot(taskId: string, slot: { key: string; request: number }): Promise<boolean> {
  try {
    await Context.current()
      .client.workflow.getHandle(limiterWorkflowId(slot.key))
      .signal(releaseSlotSignal, { taskId, request: slot.request });
    return true;
  } catch (err) {
    log.warn('flow control: early release failed; the workflow releases the slot', { taskId, error: String(err) });
    return false;
  }
}

/**
 * The slot of an attempt whose call is over goes to the first staged attempt of its key parked in
 * this worker, if any (its call begins now; the limiter hears of it in one signal), else back to
 * the limiter. Best effort: false when the signal failed, and the workflow then releases the slot
 * itself; a parked attempt already started keeps the slot it was handed (the limiter counts it
 * when the workflow's release or the attempt's own end reaches it).
 */
async function passOnFlowSlot(
  relay: SlotRelay,
  handOvers: HandOverSignals,
  taskId: string,
  slot: { key: string; request: number },
): Promise<boolean> {
  const next = await relay.handOverSoon(slot.key);
  if (next === undefined) return releaseFlowSlot(taskId, slot);
  const limiter = Context.current().client.workflow.getHandle(limiterWorkflowId(slot.key));
  const handOver = { from: { taskId, request: slot.request }, to: { taskId: next.taskId, request: next.request } };
  const delivered = await handOvers.send(slot.key, handOver, async (signal) => {
    try {
      await limiter.signal(handOverSlotSignal, signal);
    } catch (err) {
      log.warn('flow control: a hand-over did not reach the limiter; the workflow releases the slot', {
        taskId,
        error: String(err),
      });
      throw err;
    }
  });
  return delivered;
}

/**
 * `callCallback` that, for a flow-controlled attempt, passes its slot on once the call is over
 * (unless the callee took the work for async completion: the attempt then stays in flight).
 */
export function withEarlyRelease(
  callCallback: (request: CallbackRequest) => Promise<CallbackOutcome>,
  relay: SlotRelay,
  handOvers: HandOverSignals = new HandOverSignals(),
): (request: CallbackRequest) => Promise<CallbackOutcome> {
  return async (request) => {
    const slot = request.flowSlot;
    if (slot === undefined) return callCallback(request);
    const reported = slot.reportStart === true ? reportCallStart(request.taskId, slot) : undefined;
    let outcome: CallbackOutcome | undefined;
    let failure: unknown;
    try {
      outcome = await callCallback(request);
    } catch (err) {
      failure = err;
    }
    // The attempt stays open until the limiter has heard (a signal can take seconds on a loaded
    // server): its beats go on meanwhile, or its heartbeat timeout would end an attempt whose
    // call is over and the task would call again.
    const released = await whileBeating(request, async () => {
      // The report first: a release that overtook it would stamp the start later than it was.
      await reported;
      if (outcome?.kind === 'accepted') return false;
      return passOnFlowSlot(relay, handOvers, request.taskId, slot);
    });
    if (outcome?.kind === 'accepted') return outcome;
    if (outcome !== undefined) {
      // A success says so, sparing the workflow its own release (a signal through the server,
      // events in both histories, and a workflow task of the limiter's, on every attempt).
      return released ? { ...outcome, slotReleased: true } : outcome;
    }
    // So does a failed call, in its details (a 429 storm is where a key's releases pile up).
    if (released && failure instanceof ApplicationFailure && isFailureDetails(failure.details?.[0])) {
      failure.details[0].slotReleased = true;
    }
    throw failure;
  };
}

/** Runs `work`, beating as a call does (`{ attempt }`, which a heartbeat timeout reports). */
async function whileBeating<T>(request: CallbackRequest, work: () => Promise<T>): Promise<T> {
  const context = Context.current();
  const attempt = (request.attemptOffset ?? 0) + context.info.attempt;
  const beat = setInterval(() => context.heartbeat({ attempt }), heartbeatIntervalMs(context.info.heartbeatTimeoutMs));
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}

function isFailureDetails(value: unknown): value is AttemptFailureDetails {
  return typeof value === 'object' && value !== null && typeof (value as { attempt?: unknown }).attempt === 'number';
}
