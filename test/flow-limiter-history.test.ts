/**
 * What a key's limiter records in its history while tasks use the key, read from Temporal rather
 * than inferred from timing: each attempt gives its slot back exactly once, the worker's release
 * after a failed call included (the workflow sends none of its own), and a key with a queue keeps
 * one wake-up timer instead of starting and cancelling one on every signal.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { limiterWorkflowId, releaseSlotSignal } from '../workflows/flow-control-contract.js';
import { workflowIdForTask } from '../workflows/task-contract.js';
import { terminateRunning } from './support/cleanup.js';
import { concurrencyCounter, newKey, waitForKey } from './support/flow-keys.js';
import { handOversIn } from './support/flow-handoff.js';
import { Receiver, respondJson } from './support/receiver.js';
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

/** The releases the limiter received, as `taskId#request`, in order. */
function releasesIn(events: HistoryEvent[]): string[] {
  return events.flatMap((event) => {
    const signalled = event.workflowExecutionSignaledEventAttributes;
    if (signalled?.signalName !== releaseSlotSignal.name) return [];
    const release = defaultPayloadConverter.fromPayload<{ taskId: string; request: number }>(signalled.input!.payloads![0]!);
    return [`${release.taskId}#${release.request}`];
  });
}

describe("the limiter's history", () => {
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
