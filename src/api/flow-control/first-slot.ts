/**
 * A due flow-controlled task's first slot, asked for by the API before it starts the task: when
 * the key has a slot free and nobody waiting, the grant goes into the task's input and the task
 * calls as soon as it starts, without a round of signals through its key's limiter (measured:
 * what a free slot costs a create → first callback, README "Performance").
 */
import { DEFAULT_PRIORITY } from '../../../workflows/flow-control-contract.js';
import type { TaskInput, TaskMemo } from '../../../workflows/task-contract.js';
import { initialMemo } from '../../../workflows/task-start.js';
import type { PreparedTask } from '../tasks/prepared-task.js';
import type { FlowControlService } from './flow-control-service.js';

export interface FirstSlotOutcome {
  /** The input to start the task with: the grant in `flowControl.firstSlot` when there is one. */
  input: TaskInput;
  /** The limiter took the create's limits with the ask; otherwise they are still to be set. */
  limitsSet: boolean;
  /** The memo to start it with: a task refused its first slot waits from its start, and says so. */
  memo: TaskMemo;
}

/**
 * A grant whose task then does not start (the create fails, or repeats an earlier one) is not
 * given back from here: the start may have happened unseen. The limiter frees it when the task
 * asks again, or when its holder check finds no such task.
 */
export async function withFirstSlot(flowControl: FlowControlService, prepared: PreparedTask): Promise<FirstSlotOutcome> {
  const { input, limitsSet } = await askFirstSlot(flowControl, prepared);
  return { input, limitsSet, memo: input === prepared.input ? prepared.memo : initialMemo(input) };
}

async function askFirstSlot(flowControl: FlowControlService, prepared: PreparedTask): Promise<Omit<FirstSlotOutcome, 'memo'>> {
  const flow = prepared.input.flowControl;
  if (flow === undefined) return { input: prepared.input, limitsSet: false };
  // An input carries no grant it was not given now (a replay copies its original's input).
  const input: TaskInput = { ...prepared.input, flowControl: { key: flow.key, limits: flow.limits } };
  if (input.delaySeconds > 0) return { input, limitsSet: false };
  // A create with an Idempotency-Key may repeat one that started its task long ago: its limits
  // must not undo a PUT since, so they are set only once the task turns out new (after start).
  const withLimits = prepared.setsFlowLimits && prepared.idempotency === undefined;
  const acquire = { taskId: input.id, request: 1, priority: input.priority ?? DEFAULT_PRIORITY, createdAt: input.createdAt };
  const answer = await flowControl.tryFirstSlot(
    flow.key,
    { acquire, ...(withLimits ? { limits: flow.limits } : {}) },
    flow.limits,
  );
  const limitsSet = answer !== undefined && (withLimits || !prepared.setsFlowLimits);
  if (answer === undefined) return { input, limitsSet };
  if (!answer.granted) return { input: { ...input, flowControl: { ...input.flowControl!, firstSlotRefused: true } }, limitsSet };
  const firstSlot = { request: 1, ...(answer.reportStart ? { reportStart: true } : {}) };
  return { input: { ...input, flowControl: { ...input.flowControl!, firstSlot } }, limitsSet };
}
