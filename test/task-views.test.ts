/**
 * Views from what the server stores, on their own: the attempt count from a pending callback
 * activity must be exact whichever of the two reads (the workflow's state, the server's pending
 * activities) is newer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withPendingActivities } from '../activities/task-phase.js';
import { callbackActivityIdAfter, type TaskState } from '../workflows/task-contract.js';

const STARTED = 2;
const SCHEDULED = 1;
const view = (attempts: number, status: TaskState['status'] = 'pending'): TaskState => ({
  id: 't',
  status,
  callbackUrl: 'https://app.example/run',
  webhookUrl: null,
  retries: 3,
  timeout: 30,
  delay: 0,
  createdAt: '2026-12-02T00:00:00.000Z',
  updatedAt: '2026-12-02T00:00:00.000Z',
  attempts,
});
const callback = (activityId: string, attempt: number, state: number) => ({
  activityId,
  activityType: { name: 'callCallback' },
  attempt,
  state,
});

describe('task views', () => {
  it('counts the attempts of a first schedule from the server, whichever read is newer', () => {
    assert.equal(withPendingActivities(view(0), [callback('1', 2, STARTED)]).attempts, 2);
    // The workflow already took in the answer of attempt 1 (its state is newer than the pending
    // activity read just before): still 1, not 2.
    assert.equal(withPendingActivities(view(1, 'running'), [callback('1', 1, STARTED)]).attempts, 1);
  });

  it('counts on after attempts that awaited completion, from the activity id', () => {
    const after = callbackActivityIdAfter(2);
    assert.equal(withPendingActivities(view(2), [callback(after, 1, STARTED)]).attempts, 3);
    assert.equal(withPendingActivities(view(2), [callback(after, 2, SCHEDULED)]).attempts, 3);
    assert.equal(withPendingActivities(view(2), [callback(after, 2, SCHEDULED)]).status, 'retrying');
  });
});
