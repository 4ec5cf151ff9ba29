/** Reading flow-control keys through the API, and a callee that counts calls in flight, for the flow-control tests. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import proto from '@temporalio/proto';
import { CALLBACK_STAGED_ACTIVITY } from '../../workflows/staged-attempt-contract.js';
import { workflowIdForTask } from '../../workflows/task-contract.js';
import { eventually } from './eventually.js';
import type { Harness } from './harness.js';
import type { Responder } from './receiver.js';

/** A key no other test (or earlier run on a shared server) uses. */
export const newKey = (name: string): string => `${name}-${randomUUID().slice(0, 8)}`;

/** Answers after `ms` (and after `gate`, when given), counting how many calls it holds at once. */
export function concurrencyCounter(ms: number, gate?: Promise<void>): { responder: Responder; peak: () => number } {
  let current = 0;
  let peak = 0;
  return {
    peak: () => peak,
    responder: async (_received, response) => {
      current++;
      peak = Math.max(peak, current);
      await gate;
      await new Promise((resolve) => setTimeout(resolve, ms));
      current--;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"ok":true}');
    },
  };
}

export async function flowKey(on: Harness, key: string): Promise<any> {
  const response = await on.api('GET', `/v1/flow-control/${encodeURIComponent(key)}`);
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return response.body;
}

export async function waitForKey(on: Harness, key: string, predicate: (view: any) => boolean, what: string): Promise<any> {
  return eventually(
    async () => {
      const view = await flowKey(on, key);
      return predicate(view) ? view : undefined;
    },
    { timeoutMs: 30_000, what: `key ${key}: ${what}` },
  );
}

/**
 * Whether the task's staged attempt has started, that is, parks in a worker now (the server's
 * pending state); with `beating`, also that it has beaten as a park does (`parked: true`), which it
 * does from inside its worker's relay, where a grant's delivery finds it.
 */
export async function stagedAttemptParked(on: Harness, taskId: string, { beating = false } = {}): Promise<boolean> {
  const description = await on.client.workflow.getHandle(workflowIdForTask(taskId)).describe();
  return (description.raw.pendingActivities ?? []).some((activity) => {
    if (activity.activityType?.name !== CALLBACK_STAGED_ACTIVITY) return false;
    if (activity.state !== proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED) return false;
    if (!beating) return true;
    const beat = activity.heartbeatDetails?.payloads?.[0];
    return beat != null && defaultPayloadConverter.fromPayload<{ parked?: boolean }>(beat as Payload).parked === true;
  });
}
