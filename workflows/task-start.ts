/**
 * What a task's workflow starts with besides its input: the memo the API reads until the workflow
 * publishes its own, and the search attributes lists and bulk actions filter on. Both the API
 * (create, replay) and the worker (bulk replay, activities/bulk-operation.ts) start tasks, so they
 * share these. Pure functions of the input: deterministic, no I/O.
 */
import type { SearchAttributePair } from '@temporalio/common';
import { DEFAULT_PRIORITY } from './flow-control-contract.js';
import {
  DEFAULT_CALLBACK_METHOD,
  FLOW_CONTROL_KEY_SEARCH_ATTRIBUTE,
  TASK_LABELS_SEARCH_ATTRIBUTE,
  TASK_STATUS_SEARCH_ATTRIBUTE,
  indexedTaskStatus,
  type TaskInput,
  type TaskMemo,
  type TaskPolicy,
  type TaskStatus,
} from './task-contract.js';

/**
 * The task's view before its workflow has run: what create answers, what the memo starts with,
 * and the workflow's own initial state. Fields added since v1 only when set (older histories'
 * state stays as it was), `priority` always (the view has it).
 */
export function initialMemo(input: TaskInput): TaskMemo {
  const status: TaskStatus = input.delaySeconds > 0 ? 'scheduled' : 'pending';
  return {
    id: input.id,
    status,
    callbackUrl: input.callbackUrl,
    ...(input.method !== undefined ? { method: input.method } : {}),
    webhookUrl: input.webhookUrl,
    retries: input.retries,
    timeout: input.timeoutSeconds,
    delay: input.delaySeconds,
    createdAt: input.createdAt,
    updatedAt: input.createdAt,
    attempts: 0,
    ...(input.labels !== undefined && input.labels.length > 0 ? { labels: input.labels } : {}),
    ...(input.replayOf !== undefined ? { replayOf: input.replayOf } : {}),
    ...(input.scheduleId !== undefined ? { scheduleId: input.scheduleId } : {}),
    ...(input.webhookUrl !== null ? { webhook: { status: 'pending', attempts: 0 } } : {}),
    priority: input.priority ?? DEFAULT_PRIORITY,
    ...(input.flowControl !== undefined
      ? { flowControl: { key: input.flowControl.key, waiting: input.flowControl.firstSlotRefused === true } }
      : {}),
  };
}

/**
 * `TaskStatus` always; `TaskLabels` and `FlowControlKey` only when the task has them (an empty
 * value is a visibility write that filters nothing). `flowControl` is read defensively: tasks
 * from before flow control have none.
 */
export function taskSearchAttributes(input: TaskInput): SearchAttributePair[] {
  const pairs: SearchAttributePair[] = [
    { key: TASK_STATUS_SEARCH_ATTRIBUTE, value: indexedTaskStatus(initialMemo(input).status) },
  ];
  if (input.labels !== undefined && input.labels.length > 0) {
    pairs.push({ key: TASK_LABELS_SEARCH_ATTRIBUTE, value: input.labels });
  }
  const key = flowControlKey(input);
  if (key !== undefined) pairs.push({ key: FLOW_CONTROL_KEY_SEARCH_ATTRIBUTE, value: key });
  return pairs;
}

export function flowControlKey(input: TaskInput): string | undefined {
  const flowControl = (input as { flowControl?: unknown }).flowControl;
  if (flowControl === null || typeof flowControl !== 'object') return undefined;
  const key = (flowControl as { key?: unknown }).key;
  return typeof key === 'string' && key !== '' ? key : undefined;
}

/** The Temporal UI's one-line summary of a task. */
export function taskSummary(input: TaskInput): string {
  return `${input.method ?? DEFAULT_CALLBACK_METHOD} ${new URL(input.callbackUrl).host}`;
}

/** What a replay may change; everything else is the original's. */
export interface ReplayOverrides {
  delay?: number;
  retries?: number;
  timeout?: number;
}

/**
 * Fields of an input that belong to one task and are never copied into its replay: its identity,
 * its creation time, its schedule (a replay is no run of the schedule), the retired token.
 */
const NOT_REPLAYED = new Set(['id', 'createdAt', 'scheduleId', 'taskToken', 'replayOf', 'delaySeconds']);

/**
 * A replay's input: the original's whole input (so fields added later, such as `method`,
 * `flowControl` or `priority`, carry over without a change here), with a new id and creation time,
 * the deployment's current retry policy, and the overrides. A replay runs at once unless `delay`
 * says otherwise: the original's delay was about when it first ran.
 */
export function replayInput(
  original: TaskInput,
  replay: { id: string; createdAt: string; policy: TaskPolicy; overrides: ReplayOverrides },
): TaskInput {
  const copied = Object.fromEntries(Object.entries(original).filter(([name]) => !NOT_REPLAYED.has(name)));
  const { overrides } = replay;
  // The original's first slot was granted to the original: the replay asks for its own.
  const flowControl =
    original.flowControl !== undefined ? { key: original.flowControl.key, limits: original.flowControl.limits } : undefined;
  return {
    ...(copied as Omit<TaskInput, 'id' | 'createdAt' | 'delaySeconds'>),
    ...(flowControl !== undefined ? { flowControl } : {}),
    id: replay.id,
    createdAt: replay.createdAt,
    policy: replay.policy,
    retries: overrides.retries ?? original.retries,
    timeoutSeconds: overrides.timeout ?? original.timeoutSeconds,
    delaySeconds: overrides.delay ?? 0,
    replayOf: original.id,
  };
}
