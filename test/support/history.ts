/** What a task's workflow history says, for checks that must not rest on sleeping and hoping. */
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { DELIVER_SLOT_GRANTS_ACTIVITY } from '../../workflows/flow-control-contract.js';
import { CALLBACK_ACTIVITY, workflowIdForTask } from '../../workflows/task-contract.js';
import { eventually } from './eventually.js';

/**
 * The callback attempts a task's workflow made, read from its history once it has closed, when no
 * attempt can start any more. Each scheduled callback activity records the attempt it ended on.
 */
export async function callbackAttemptsOnceClosed(on: { client: Client }, taskId: string): Promise<number> {
  const handle = on.client.workflow.getHandle(workflowIdForTask(taskId));
  await eventually(async () => ((await handle.describe()).status.name !== 'RUNNING' ? true : undefined), {
    what: `the workflow of task ${taskId} to close`,
  });
  const callbacks = new Set<string>();
  let attempts = 0;
  for (const event of (await handle.fetchHistory()).events ?? []) {
    if (event.activityTaskScheduledEventAttributes?.activityType?.name === CALLBACK_ACTIVITY)
      callbacks.add(String(event.eventId));
    const started = event.activityTaskStartedEventAttributes;
    if (started && callbacks.has(String(started.scheduledEventId))) attempts += started.attempt ?? 1;
  }
  return attempts;
}

/**
 * What the limiter's grant deliveries answered across every run of it from `firstRunId` on (the
 * continue-as-new chain): each answer lists the tasks it found ended. A slot or stage notice for a
 * task that had ended means the limiter still had it in line after it was done.
 */
export async function grantsToEndedTasks(on: { client: Client }, workflowId: string, firstRunId: string): Promise<unknown[]> {
  const ended: unknown[] = [];
  for (let runId: string | undefined = firstRunId; runId !== undefined;) {
    const history: temporal.api.history.v1.IHistory = await on.client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events = history.events ?? [];
    const delivering = new Set<string>();
    runId = undefined;
    for (const event of events) {
      if (event.activityTaskScheduledEventAttributes?.activityType?.name === DELIVER_SLOT_GRANTS_ACTIVITY)
        delivering.add(String(event.eventId));
      const completed = event.activityTaskCompletedEventAttributes;
      if (completed && delivering.has(String(completed.scheduledEventId))) {
        ended.push(...defaultPayloadConverter.fromPayload<unknown[]>(completed.result!.payloads![0]! as Payload));
      }
      runId = event.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? runId;
    }
  }
  return ended;
}

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/**
 * The patch ids of a history's patch markers (`patched()`), in order. Each costs the workflow two
 * events and a `TemporalChangeVersion` upsert, a visibility write.
 */
export function patchMarkersIn(events: readonly HistoryEvent[]): string[] {
  return events.flatMap((event) => {
    const marker = event.markerRecordedEventAttributes;
    if (marker?.markerName !== 'core_patch') return [];
    const payload = marker.details?.['patch-data']?.payloads?.[0];
    return payload ? [defaultPayloadConverter.fromPayload<{ id: string }>(payload as Payload).id] : [];
  });
}

/** How many times the workflow wrote its memo (`upsertMemo`: a visibility write each). */
export const memoWritesIn = (events: readonly HistoryEvent[]): number =>
  events.filter((event) => event.workflowPropertiesModifiedEventAttributes).length;
