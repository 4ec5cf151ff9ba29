/**
 * What a flow-controlled task writes in its own history, read from Temporal: one marker for its
 * path (FLOW_PATH_MARKER), not one per change; no memo write when it begins to wait at its start
 * (its first memo says so when the API was refused its first slot) nor when its slot comes (the
 * list reads that from its pending attempt); and no grant signal when the grant
 * started its parked attempt in the worker that delivered it (the park's outcome tells the task).
 * Each of those was a write per attempt that the engine's own work does not make.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { temporal } from '@temporalio/proto';
import { slotGrantedSignal } from '../workflows/flow-control-contract.js';
import { FLOW_PATH_MARKER } from '../workflows/flow-controlled-callback.js';
import { workflowIdForTask } from '../workflows/task-contract.js';
import { terminateRunning } from './support/cleanup.js';
import { eventually } from './support/eventually.js';
import { newKey, stagedAttemptParked, waitForKey } from './support/flow-keys.js';
import { memoWritesIn, patchMarkersIn } from './support/history.js';
import { Receiver, type Responder } from './support/receiver.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

let harness: Harness;
let receiver: Receiver;

before(async () => {
  harness = await startHarness();
  receiver = await Receiver.start();
});

after(async () => {
  await terminateRunning(harness);
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

async function taskEvents(taskId: string): Promise<HistoryEvent[]> {
  return (await harness.client.workflow.getHandle(workflowIdForTask(taskId)).fetchHistory()).events ?? [];
}

const grantsHeard = (events: HistoryEvent[]): number =>
  events.filter((event) => event.workflowExecutionSignaledEventAttributes?.signalName === slotGrantedSignal.name).length;

/** A callee that holds every call until `open()`; how many calls it has. */
function gated(path: string): { open: () => void; calls: () => number } {
  let open = (): void => undefined;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let calls = 0;
  const responder: Responder = async (_received, response) => {
    calls++;
    await gate;
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end('{"ok":true}');
  };
  receiver.always(path, responder);
  return { open, calls: () => calls };
}

describe("a flow-controlled task's history", () => {
  it('hears no grant that started its parked attempt, and writes one marker and no memo for its slot', async () => {
    const key = newKey('started-by-grant');
    const blocker = gated('/started-by-grant-blocker');
    receiver.always('/started-by-grant', async (_received, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"ok":true}');
    });
    const held = await harness.createTask({
      callbackUrl: receiver.url('/started-by-grant-blocker'),
      flowControl: { key, parallelism: 1 },
    });
    await eventually(async () => (blocker.calls() === 1 ? true : undefined), { what: 'the blocker held' });
    const staged = await harness.createTask({
      callbackUrl: receiver.url('/started-by-grant'),
      flowControl: { key, parallelism: 1 },
    });
    // Beating as a park: it is in its worker's relay, where the grant's delivery finds it.
    await eventually(async () => ((await stagedAttemptParked(harness, staged, { beating: true })) ? true : undefined), {
      timeoutMs: 30_000,
      what: 'the staged attempt parked',
    });
    // A second slot: the limiter grants it to the staged task, and the grant starts its park.
    assert.equal((await harness.api('PUT', `/v1/flow-control/${key}`, { parallelism: 2 })).status, 200);
    const view = await harness.waitForEnd(staged, { timeoutMs: 30_000 });
    assert.equal(view.status, 'succeeded');
    assert.equal(view.attempts, 1);
    assert.deepEqual(view.flowControl, { key, waiting: false });
    assert.equal(receiver.to('/started-by-grant').length, 1);
    const events = await taskEvents(staged);
    assert.equal(grantsHeard(events), 0, 'the task heard a grant its parked attempt had been started with');
    assert.deepEqual(patchMarkersIn(events), [FLOW_PATH_MARKER]);
    // Its memo: its end only (it waited from its start: the memo it started with says so).
    assert.equal(memoWritesIn(events), 1, `${memoWritesIn(events)} memo writes`);
    blocker.open();
    assert.equal((await harness.waitForEnd(held, { timeoutMs: 30_000 })).status, 'succeeded');
    await waitForKey(harness, key, (counts) => counts.inFlight === 0 && counts.waiting === 0, 'idle');
  });

  it('is listed as calling, not waiting, once its grant came, though its memo was written while it waited', async () => {
    const key = newKey('listed-calling');
    // With a rate nothing is staged: the waiter's slot comes by the limiter's grant.
    const flowControl = { key, parallelism: 1, rate: 100, period: 1 };
    const label = key;
    const first = gated('/listed-calling-first');
    const second = gated('/listed-calling-second');
    const blocker = await harness.createTask({
      callbackUrl: receiver.url('/listed-calling-first'),
      flowControl,
      labels: [label],
    });
    await eventually(async () => (first.calls() === 1 ? true : undefined), { what: 'the blocker held' });
    const waiter = await harness.createTask({
      callbackUrl: receiver.url('/listed-calling-second'),
      flowControl,
      labels: [label],
    });
    await waitForKey(harness, key, (counts) => counts.waiting === 1, 'the waiter waiting');
    const waiting = await harness.api('GET', `/v1/tasks?label=${encodeURIComponent(label)}&limit=10`);
    const listedWaiting = (waiting.body.tasks as Array<{ id: string; flowControl?: unknown }>).find((task) => task.id === waiter);
    // The API was refused the first slot: the task waits from its start, and its memo says so.
    assert.deepEqual(listedWaiting?.flowControl, { key, waiting: true });
    first.open();
    await eventually(async () => (second.calls() === 1 ? true : undefined), { what: "the waiter's call held" });
    const listed = await eventually(
      async () => {
        const response = await harness.api('GET', `/v1/tasks?label=${encodeURIComponent(label)}&limit=10`);
        assert.equal(response.status, 200, JSON.stringify(response.body));
        const task = (response.body.tasks as Array<{ id: string; status: string; flowControl?: unknown }>).find(
          (listedTask) => listedTask.id === waiter,
        );
        return task?.status === 'running' ? task : undefined;
      },
      { what: 'the waiter listed as running' },
    );
    assert.deepEqual(listed.flowControl, { key, waiting: false });
    const events = await taskEvents(waiter);
    // Neither its ask nor its grant wrote its memo: it started saying the task waits, and its
    // pending attempt says it no longer does.
    assert.equal(memoWritesIn(events), 0, `${memoWritesIn(events)} memo writes while it waited and called`);
    second.open();
    for (const id of [blocker, waiter]) assert.equal((await harness.waitForEnd(id, { timeoutMs: 30_000 })).status, 'succeeded');
  });
});
