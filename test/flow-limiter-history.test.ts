/**
 * What a key's limiter records in its history while tasks use the key, read from Temporal rather
 * than inferred from timing: each attempt gives its slot back exactly once, the worker's release
 * after a failed call included (the workflow sends none of its own), a task's ask comes from its
 * worker (no signal of the workflow's own, and a limiter an operator terminated is started again
 * with it), and a key with a queue keeps one wake-up timer instead of starting and cancelling one
 * on every signal.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { acquireSlotSignal, limiterWorkflowId, releaseSlotSignal } from '../workflows/flow-control-contract.js';
import { workflowIdForTask } from '../workflows/task-contract.js';
import { terminateRunning } from './support/cleanup.js';
import { concurrencyCounter, newKey, waitForKey } from './support/flow-keys.js';
import { handOversIn } from './support/flow-handoff.js';
import { Receiver, respondJson } from './support/receiver.js';
import { eventually } from './support/eventually.js';
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

async function limiterEvents(key: string): Promise<HistoryEvent[]> {
  return (await harness.client.workflow.getHandle(limiterWorkflowId(key)).fetchHistory()).events ?? [];
}

/** The slots named in the limiter's `signal` signals (releases, acquires), as `taskId#request`, in order. */
function slotsSignalled(events: HistoryEvent[], signal: { name: string }): string[] {
  return events.flatMap((event) => {
    const signalled = event.workflowExecutionSignaledEventAttributes;
    if (signalled?.signalName !== signal.name) return [];
    const slot = defaultPayloadConverter.fromPayload<{ taskId: string; request: number }>(signalled.input!.payloads![0]!);
    return [`${slot.taskId}#${slot.request}`];
  });
}
const releasesIn = (events: HistoryEvent[]): string[] => slotsSignalled(events, releaseSlotSignal);
const acquiresIn = (events: HistoryEvent[]): string[] => slotsSignalled(events, acquireSlotSignal);

async function taskEvents(taskId: string): Promise<HistoryEvent[]> {
  return (await harness.client.workflow.getHandle(workflowIdForTask(taskId)).fetchHistory()).events ?? [];
}

/** Signals the task's workflow sent itself (commands), and the local activities it ran, by type. */
function sentByTask(events: HistoryEvent[]): { signals: string[]; localActivities: string[] } {
  const signals = events.flatMap((event) => event.signalExternalWorkflowExecutionInitiatedEventAttributes?.signalName ?? []);
  const localActivities = events.flatMap((event) => {
    const marker = event.markerRecordedEventAttributes;
    if (marker?.markerName !== 'core_local_activity') return [];
    const data = defaultPayloadConverter.fromPayload<{ activity_type: string }>(marker.details!.data!.payloads![0]!);
    return [data.activity_type];
  });
  return { signals, localActivities };
}

describe("the limiter's history", () => {
  it("hears a waiting task ask from its worker, not by a signal of the workflow's own", async () => {
    const key = newKey('asked-by-worker');
    const counter = concurrencyCounter(300);
    receiver.always('/asked-by-worker', counter.responder);
    const create = (): Promise<string> =>
      harness.createTask({ callbackUrl: receiver.url('/asked-by-worker'), flowControl: { key, parallelism: 1 } });
    const blocker = await create();
    await waitForKey(harness, key, (view) => view.inFlight === 1, 'the blocker holding the slot');
    const waiter = await create();
    for (const id of [blocker, waiter]) assert.equal((await harness.waitForEnd(id, { timeoutMs: 60_000 })).status, 'succeeded');
    assert.equal(counter.peak(), 1);
    const events = await taskEvents(waiter);
    const sent = sentByTask(events);
    assert.deepEqual(sent.signals, []);
    // One ask. A `locateHeldCall` may follow it: when the slot comes free before the waiter's staged
    // attempt has parked in its worker, the grant goes to the task, which then wakes the park itself.
    assert.deepEqual(
      sent.localActivities.filter((type) => type !== 'locateHeldCall'),
      ['signalFlowLimiter'],
    );
    await waitForKey(harness, key, (view) => view.inFlight === 0 && view.waiting === 0, 'idle');
    assert.deepEqual(acquiresIn(await limiterEvents(key)), [`${waiter}#1`]);
  });

  it("starts a key's limiter again with a task's ask when an operator terminated it", async () => {
    const key = newKey('terminated-limiter');
    // The first call fails with a Retry-After long enough to terminate the limiter in the backoff.
    receiver.script(
      '/terminated-limiter',
      respondJson(503, { error: 'busy' }, { 'retry-after': '3' }),
      respondJson(200, { ok: true }),
    );
    const id = await harness.createTask({
      callbackUrl: receiver.url('/terminated-limiter'),
      retries: 1,
      flowControl: { key, parallelism: 1 },
    });
    await eventually(async () => ((await harness.task(id)).status === 'retrying' ? true : undefined), {
      what: 'the task in its backoff',
    });
    const limiter = harness.client.workflow.getHandle(limiterWorkflowId(key));
    const terminated = (await limiter.describe()).runId;
    await limiter.terminate('an operator');
    const view = await harness.waitForEnd(id, { timeoutMs: 60_000 });
    assert.equal(view.status, 'succeeded');
    assert.equal(view.attempts, 2);
    // A new run, started by the retry's ask (signal-with-start from the worker), with the task's limits.
    const restarted = await limiter.describe();
    assert.notEqual(restarted.runId, terminated);
    assert.deepEqual(acquiresIn(await limiterEvents(key)), [`${id}#2`]);
    assert.deepEqual(sentByTask(await taskEvents(id)).signals, []);
    const viewOfKey = await waitForKey(harness, key, (counts) => counts.inFlight === 0 && counts.waiting === 0, 'idle');
    assert.equal(viewOfKey.parallelism, 1);
  });

  it('receives one release per attempt, a failed attempt included, and none from the workflow', async () => {
    const key = newKey('released-once');
    // The first call fails (a retryable 503), the second succeeds: two attempts, two slots.
    receiver.script(
      '/released-once',
      respondJson(503, { error: 'busy' }, { 'retry-after': '1' }),
      respondJson(200, { ok: true }),
    );
    const id = await harness.createTask({
      callbackUrl: receiver.url('/released-once'),
      retries: 1,
      flowControl: { key, parallelism: 1 },
    });
    const view = await harness.waitForEnd(id, { timeoutMs: 60_000 });
    assert.equal(view.status, 'succeeded');
    assert.equal(view.attempts, 2);
    // Both releases come from the worker: the second before the task's workflow ends, the first
    // before the retry's request (the task sends it after its backoff). So the ended task's
    // history is final, and the limiter's is once the key is idle.
    await waitForKey(harness, key, (counts) => counts.inFlight === 0 && counts.waiting === 0, 'idle');
    assert.deepEqual(releasesIn(await limiterEvents(key)), [`${id}#1`, `${id}#2`]);
    const task = (await harness.client.workflow.getHandle(workflowIdForTask(id)).fetchHistory()).events ?? [];
    const sentByWorkflow = task.filter(
      (event) => event.signalExternalWorkflowExecutionInitiatedEventAttributes?.signalName === releaseSlotSignal.name,
    );
    assert.equal(sentByWorkflow.length, 0, 'the workflow released a slot the worker had given back');
  });

  it('keeps one wake-up timer while tasks queue for a saturated key', async () => {
    const key = newKey('kept-timer');
    const counter = concurrencyCounter(100);
    receiver.always('/kept-timer', counter.responder);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      ids.push(await harness.createTask({ callbackUrl: receiver.url('/kept-timer'), flowControl: { key, parallelism: 1 } }));
    }
    for (const id of ids) assert.equal((await harness.waitForEnd(id, { timeoutMs: 60_000 })).status, 'succeeded');
    assert.equal(counter.peak(), 1);
    await waitForKey(harness, key, (view) => view.inFlight === 0 && view.waiting === 0, 'idle');
    const events = await limiterEvents(key);
    // While saturated with waiters the limiter must wake for its holder check; every release and
    // request wakes it sooner. A timer per wait (the version before the kept timer) starts one
    // and cancels it on each of those ~16 signals.
    const started = events.filter((event) => event.timerStartedEventAttributes).length;
    const cancelled = events.filter((event) => event.timerCanceledEventAttributes).length;
    assert.equal(cancelled, 0, `${cancelled} wake-up timers cancelled`);
    assert.ok(started <= 2, `${started} wake-up timers started for one saturated stretch`);
    // Each attempt gave its slot back once: to the limiter, or straight to a staged attempt.
    assert.equal(releasesIn(events).length + handOversIn(events).length, 8);
  });
});
