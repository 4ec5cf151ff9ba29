/**
 * Where a flow-control slot's time goes between one call's end and the next call on it, read from
 * the limiter's and the tasks' histories (server timestamps) and the callee's clock (the same
 * machine). For `flow-control-measure.ts`: issue 14's gap on the dev server is this hand-off
 * (its drains use ~1.5 of the 2 cores, where the engine's drain uses both).
 */
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import {
  DELIVER_SLOT_GRANTS_ACTIVITY,
  handOverSlotSignal,
  limiterWorkflowId,
  type SlotHandOver,
  type SlotHandOvers,
} from '../../workflows/flow-control-contract.js';
import { CALLBACK_ACTIVITY, workflowIdForTask } from '../../workflows/task-contract.js';
import { percentile } from './percentile.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The staged hand-overs a limiter received (`handOverSlot`, each with those it carried `also`), in order. */
export function handOversIn(events: readonly HistoryEvent[]): SlotHandOver[] {
  return events.flatMap((event) => {
    const signalled = event.workflowExecutionSignaledEventAttributes;
    if (signalled?.signalName !== handOverSlotSignal.name) return [];
    const { also, ...first } = defaultPayloadConverter.fromPayload<SlotHandOvers>(signalled.input!.payloads![0]! as Payload);
    return [first, ...(also ?? [])];
  });
}

/** How many `handOverSlot` signals a limiter received (each carries one hand-over or more). */
export function handOverSignalsIn(events: readonly HistoryEvent[]): number {
  return events.filter((event) => event.workflowExecutionSignaledEventAttributes?.signalName === handOverSlotSignal.name).length;
}

/** The hand-off's steps, in order; each is the time from the step before (ms). */
export const HANDOFF_STEPS = [
  'call over → release signalled to the limiter',
  'release → limiter workflow task started',
  'limiter workflow task (started → completed)',
  'grant activity scheduled → grant signalled to the task',
  'grant → task workflow task started',
  'task workflow task (started → completed)',
  'call scheduled → the callee has it',
] as const;

export interface Handoff {
  grants: number;
  /** Per step, p50 and p90 (ms). */
  steps: { step: (typeof HANDOFF_STEPS)[number]; p50: number; p90: number }[];
  /** Call over → next call on the slot, p50 and p90 (ms). */
  total: { p50: number; p90: number };
}

/** What a key's limiter did, from its history: events, workflow tasks, grant activities, hand-overs it heard of. */
export interface LimiterWork {
  events: number;
  workflowTasks: number;
  grantActivities: number;
  handOvers: number;
  /** The `handOverSlot` signals that carried them. */
  handOverSignals: number;
}

export async function limiterWork(client: Client, key: string): Promise<LimiterWork> {
  const events = (await client.workflow.getHandle(limiterWorkflowId(key)).fetchHistory()).events ?? [];
  return {
    events: events.length,
    workflowTasks: events.filter((e) => e.workflowTaskCompletedEventAttributes).length,
    grantActivities: events.filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === DELIVER_SLOT_GRANTS_ACTIVITY,
    ).length,
    handOvers: handOversIn(events).length,
    handOverSignals: handOverSignalsIn(events),
  };
}

export const describeLimiterWork = (work: LimiterWork): string =>
  `${work.events} events, ${work.workflowTasks} workflow tasks, ${work.grantActivities} grant activities, ` +
  `${work.handOvers} slots handed over in a worker (staged hand-over) in ${work.handOverSignals} signals`;

const at = (event: HistoryEvent): number => {
  const time = event.eventTime;
  return Number(time?.seconds ?? 0) * 1000 + Math.floor((time?.nanos ?? 0) / 1e6);
};

const signalInput = <T>(event: HistoryEvent): T | undefined => {
  const payload = event.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload<T>(payload as Payload) : undefined;
};

/** Times in one task's history: its first grant, the workflow task after it, the call's schedule. */
function taskTimes(events: HistoryEvent[]): { granted: number; wftStarted: number; wftCompleted: number } | undefined {
  const grant = events.findIndex((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'slotGranted');
  if (grant < 0) return undefined;
  const started = events.findIndex((e, i) => i > grant && e.workflowTaskStartedEventAttributes);
  const scheduled = events.find(
    (e, i) => i > started && e.activityTaskScheduledEventAttributes?.activityType?.name === CALLBACK_ACTIVITY,
  );
  if (started < 0 || scheduled === undefined) return undefined;
  return { granted: at(events[grant]!), wftStarted: at(events[started]!), wftCompleted: at(scheduled) };
}

/**
 * The hand-offs of one key's drain: every grant the limiter made in a workflow task that took a
 * release (not the resume's first grants). `calls` maps a task id to when the callee had its
 * call; `callMs` is how long the callee held each.
 */
export async function measureHandoff(client: Client, key: string, calls: Map<string, number>, callMs: number): Promise<Handoff> {
  const limiter = (await client.workflow.getHandle(limiterWorkflowId(key)).fetchHistory()).events ?? [];
  const samples: number[][] = [];
  let releases: { taskId: string; at: number }[] = [];
  let wftStarted = 0;
  const taskHistories = new Map<string, HistoryEvent[]>();
  const history = async (taskId: string): Promise<HistoryEvent[]> => {
    let events = taskHistories.get(taskId);
    if (events === undefined) {
      events = (await client.workflow.getHandle(workflowIdForTask(taskId)).fetchHistory()).events ?? [];
      taskHistories.set(taskId, events);
    }
    return events;
  };
  for (const event of limiter) {
    if (event.workflowTaskStartedEventAttributes) {
      wftStarted = at(event);
      continue;
    }
    if (event.workflowExecutionSignaledEventAttributes?.signalName === 'releaseSlot') {
      const taskId = signalInput<{ taskId: string }>(event)?.taskId;
      if (taskId !== undefined) releases.push({ taskId, at: at(event) });
      continue;
    }
    if (event.workflowTaskCompletedEventAttributes) {
      // The releases this workflow task took are those that came before it started.
      const took = releases.filter((r) => r.at <= wftStarted);
      releases = releases.filter((r) => r.at > wftStarted);
      if (took.length === 0) continue;
      const first = took.reduce((a, b) => (a.at <= b.at ? a : b));
      const completed = at(event);
      const grant = limiter.find(
        (e) =>
          e.activityTaskScheduledEventAttributes?.activityType?.name === DELIVER_SLOT_GRANTS_ACTIVITY &&
          String(e.activityTaskScheduledEventAttributes.workflowTaskCompletedEventId) === String(event.eventId),
      );
      const payload = grant?.activityTaskScheduledEventAttributes?.input?.payloads?.[0];
      const granted = payload
        ? defaultPayloadConverter.fromPayload<{ grants: { taskId: string }[] }>(payload as Payload)
        : undefined;
      const callOver = calls.get(first.taskId);
      for (const { taskId } of granted?.grants ?? []) {
        const task = taskTimes(await history(taskId));
        const called = calls.get(taskId);
        if (task === undefined || called === undefined || callOver === undefined) continue;
        const marks = [
          callOver + callMs,
          first.at,
          wftStarted,
          completed,
          task.granted,
          task.wftStarted,
          task.wftCompleted,
          called,
        ];
        samples.push(marks.slice(1).map((mark, i) => mark - marks[i]!));
      }
    }
  }
  const column = (i: number): number[] => samples.map((sample) => sample[i]!);
  const totals = samples.map((sample) => sample.reduce((a, b) => a + b, 0));
  return {
    grants: samples.length,
    steps: HANDOFF_STEPS.map((step, i) => ({ step, p50: percentile(column(i), 50), p90: percentile(column(i), 90) })),
    total: { p50: percentile(totals, 50), p90: percentile(totals, 90) },
  };
}
