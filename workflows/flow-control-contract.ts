/**
 * The contract of flow control (CONTRACT v2, "Flow control"): the per-key limiter workflow's id,
 * input, signals and query, shared by the API, the worker's activities, the limiter and the task
 * workflows that ask it for slots. Deterministic and free of I/O.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

export const FLOW_LIMITER_WORKFLOW_TYPE = 'flowLimiterWorkflow';
export const FLOW_LIMITER_ID_PREFIX = 'flow-';

/**
 * One limiter workflow per key. Keys are visible ASCII; percent-encoding keeps the id readable in
 * the Temporal UI while making every key a distinct id without characters that visibility queries
 * or URLs would have to quote.
 */
export function limiterWorkflowId(key: string): string {
  return `${FLOW_LIMITER_ID_PREFIX}${encodeURIComponent(key)}`;
}

export const DEFAULT_PRIORITY = 3;
export const DEFAULT_PERIOD_SECONDS = 1;

/** A key's limits: `null` is no limit of that kind (at least one of the two is set). */
export interface FlowLimits {
  parallelism: number | null;
  rate: number | null;
  /** Seconds: the window `rate` counts starts in. */
  period: number;
}

/** What a flow-controlled task carries in its input. */
export interface TaskFlowControl {
  key: string;
  /** The limits the creating request named: what re-creates a limiter an operator terminated. */
  limits: FlowLimits;
  /**
   * The first attempt's slot, granted to the API before it started the task (`tryAcquireSlot`):
   * the task then calls at once, without a round of signals through the limiter. Absent: the task
   * asks for it like for every later attempt.
   */
  firstSlot?: SlotGrant;
  /**
   * The API asked for the first slot and the key had none free (or a line): the task waits from
   * its start, and its first memo says so (task-start.ts), so its first ask writes none.
   */
  firstSlotRefused?: true;
}

/** A task asks for a slot for one attempt; `request` numbers its requests (attempts) 1, 2, … */
export interface SlotRequest {
  taskId: string;
  request: number;
  priority: number;
  /** The task's creation time: waiters of one priority are served in creation order. */
  createdAt: string;
}

/** The attempt ended (or the wait for it was given up): the slot, or the place in line, is free. */
export interface SlotRelease {
  taskId: string;
  request: number;
}

export interface SlotGrant {
  request: number;
  /**
   * The key has a rate: the attempt's worker reports when the call begins (`slotStarted`), and
   * the limiter counts the start from then. Absent from grants of a limiter run before that.
   */
  reportStart?: boolean;
  /**
   * The worker that delivered the grant started the task's parked, staged attempt with it. Sent by
   * workers of earlier releases; a worker now sends no grant at all then (its park tells the task).
   */
  started?: boolean;
}

/** A worker is beginning the call of the attempt that holds this slot. */
export interface SlotStart {
  taskId: string;
  request: number;
}

/**
 * One attempt start inside the rate window: `at` (limiter workflow time, ms) is set when the
 * worker reports the call begins or the slot comes back, whichever is first; until then the start
 * counts as happening now, so a grant whose call is late can never let the window open early.
 */
export interface StartRecord {
  taskId: string;
  request: number;
  at?: number;
}

/** The API's request for a due task's first slot, made before it starts the task. */
export interface FirstSlotRequest {
  acquire: SlotRequest;
  /** The create's limits become the key's (as a `configureFlow` signal would set them). */
  limits?: FlowLimits;
}

/**
 * The first-slot asks of the creates one API process received for a key while its previous ask
 * was in flight, in arrival order: one update each time, not one per create (a workflow takes at
 * most 10 updates in flight, and concurrent updates to one workflow get aborted and evict it).
 */
export interface FirstSlotsRequest {
  asks: FirstSlotRequest[];
}

/**
 * Granted only when the slot is free now and no task waits for the key (never ahead of a
 * waiter); otherwise nothing changes and the task asks for itself once it runs.
 */
export interface FirstSlotAnswer {
  granted: boolean;
  reportStart: boolean;
}

/** The limiter's activity (`deliverSlotGrants`): signals these grants and notices; answers those whose task workflow is gone. */
export const DELIVER_SLOT_GRANTS_ACTIVITY = 'deliverSlotGrants';
export interface SlotGrantDelivery {
  taskId: string;
  request: number;
  reportStart?: boolean;
}
export interface DeliverGrantsRequest {
  grants: SlotGrantDelivery[];
  /** Stage notices to signal with the grants (`slotStaged`); those whose task is gone are answered too. */
  notices?: StageNotice[];
  /** The key the notices are of. */
  key?: string;
}

/**
 * The limiter's word on whether a waiting task is staged: its attempt may start its activity and
 * park in a worker, where an attempt of the key that ends hands it its slot (`handOverSlot`).
 * `seq` orders a task's notices (they travel in concurrent activities): only the latest counts.
 */
export interface StageNotice {
  taskId: string;
  request: number;
  staged: boolean;
  seq: number;
  /** The task's place in the line, so that the worker delivering the notice hands slots over in that order. */
  priority?: number;
  createdAt?: string;
}

/** A worker handed the slot of an attempt that ended straight to a parked, staged one of the same key. */
export interface SlotHandOver {
  from: SlotRelease;
  to: SlotRelease;
}

/**
 * The `handOverSlot` signal: a hand-over, and those the same worker made for the same key while
 * its signal before was on its way (`also`, in order; absent in older histories). A limiter from
 * before `also` counts the first only; the others' `from` then holds until its holder check.
 */
export interface SlotHandOvers extends SlotHandOver {
  also?: SlotHandOver[];
}

/** Changes an operator (or a create naming limits) makes to a key. */
export interface FlowConfiguration {
  limits?: FlowLimits;
  paused?: boolean;
  /**
   * A create's request for the task's first slot, sent by APIs before they asked with
   * `tryAcquireSlot` (handled still, for their signals in a limiter's history).
   */
  acquire?: SlotRequest;
}

/** The key as `GET /v1/flow-control/{key}` shows it. */
export interface FlowKeyView {
  key: string;
  parallelism: number | null;
  rate: number | null;
  period: number;
  paused: boolean;
  inFlight: number;
  waiting: number;
  /** Of the waiting, those staged: their attempt parks in a worker, ready for a slot handed over. */
  staged?: number;
}

export interface FlowHolder {
  request: number;
  /** Workflow time of the grant, ms since the epoch. */
  grantedAt: number;
}

export interface FlowWaiter extends SlotRequest {
  /** Arrival order: breaks ties between tasks created in the same millisecond. */
  seq: number;
}

/** The limiter's whole state: its input at start and at each continue-as-new. */
export interface FlowLimiterInput {
  key: string;
  limits: FlowLimits;
  paused: boolean;
  /** How often, while waiters find every slot taken, holders' task workflows are checked for ones that closed. */
  holderCheckIntervalMs: number;
  holders?: Record<string, FlowHolder>;
  waiters?: FlowWaiter[];
  /**
   * The attempt starts inside the current rate window. Plain numbers come from a limiter run
   * before starts were reported: workflow times of the grants, oldest first.
   */
  starts?: Array<number | StartRecord>;
  /** Waiters staged to be handed a slot in a worker (ahead of every waiter), in order. */
  staged?: FlowWaiter[];
  seq?: number;
  /** How long a missing holder's slot is kept after its grant (default UNSTARTED_HOLDER_GRACE_MS; tests use seconds). */
  unstartedHolderGraceMs?: number;
  /** Continue as new past this many events (default 10,000; tests use a few dozen). */
  maxHistoryEvents?: number;
}

export const acquireSlotSignal = defineSignal<[SlotRequest]>('acquireSlot');
export const releaseSlotSignal = defineSignal<[SlotRelease]>('releaseSlot');
export const configureFlowSignal = defineSignal<[FlowConfiguration]>('configureFlow');
/** Sent by the limiter to the task workflow it grants a slot. */
export const slotGrantedSignal = defineSignal<[SlotGrant]>('slotGranted');
export const slotStartedSignal = defineSignal<[SlotStart]>('slotStarted');
/** Sent by the limiter to a waiting task it stages or unstages. */
export const slotStagedSignal = defineSignal<[Omit<StageNotice, 'taskId'>]>('slotStaged');
export const handOverSlotSignal = defineSignal<[SlotHandOvers]>('handOverSlot');
/** Sent by APIs before they batched their asks (handled still, for updates in a limiter's history). */
export const tryAcquireSlotUpdate = defineUpdate<FirstSlotAnswer, [FirstSlotRequest]>('tryAcquireSlot');
/** The answers, in the asks' order. */
export const tryAcquireSlotsUpdate = defineUpdate<FirstSlotAnswer[], [FirstSlotsRequest]>('tryAcquireSlots');
export const flowKeyQuery = defineQuery<FlowKeyView>('flowKey');

/** Activity: of these tasks, the ones whose workflow is no longer running (terminated, reset, gone). */
export interface ClosedHoldersRequest {
  taskIds: string[];
  /**
   * Of those, the ones granted so recently that a missing workflow may just not be started yet
   * (the API is granted a first slot before it starts the task): kept unless closed.
   */
  recentlyGranted?: string[];
}

/** How long a first slot's task may take to appear after its grant before a missing workflow frees the slot. */
export const UNSTARTED_HOLDER_GRACE_MS = 60_000;

/** Activity: the limiter of a key, started if it is not running (an operator terminated it). */
export interface EnsureLimiterRequest {
  key: string;
  limits: FlowLimits;
}

/**
 * Local activity of a task (`signalFlowLimiter`): its acquire or release, signalled to its key's
 * limiter from the worker's client. An acquire starts the limiter with `limits` when none runs.
 */
export interface LimiterSignalRequest {
  key: string;
  limits: FlowLimits;
  acquire?: SlotRequest;
  release?: SlotRelease;
}

/** When no create or PUT said how often to check holders (a limiter a task had to re-create). */
export const DEFAULT_HOLDER_CHECK_INTERVAL_MS = 60_000;

/**
 * Memo key of the limiter's view as of its last change of limits or pause: what the API answers
 * when no worker answers the query in time (the counts are then those of that moment).
 */
export const FLOW_MEMO_KEY = 'flowKey';

/** The options both the API and the worker start a limiter with (signal-with-start). */
export function limiterStartOptions(input: FlowLimiterInput, taskQueue: string) {
  const view: FlowKeyView = { key: input.key, ...input.limits, paused: input.paused, inFlight: 0, waiting: 0 };
  return {
    workflowId: limiterWorkflowId(input.key),
    taskQueue,
    args: [input] as [FlowLimiterInput],
    memo: { [FLOW_MEMO_KEY]: view },
    staticSummary: `flow control: ${input.key}`,
  };
}
