/**
 * Staged hand-over (workflows/flow-limiter.ts STAGED_HAND_OVER): while a key without a rate is
 * saturated, the head of its line is staged, those tasks' attempts park in a worker, and an attempt
 * of the key that ends there hands its slot straight to one of them. Read from Temporal's state
 * (the limiter's history and view, the tasks' histories) rather than timing: the hand-over happens
 * and keeps the count; a parked attempt is no attempt; a pause, a cancel and a better waiter make
 * a staged attempt stand down without calling.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type temporal } from '@temporalio/proto';
import {
  FLOW_LIMITER_WORKFLOW_TYPE,
  configureFlowSignal,
  limiterStartOptions,
  limiterWorkflowId,
  slotStagedSignal,
  type SlotHandOver,
} from '../workflows/flow-control-contract.js';
import { CALLBACK_STAGED_ACTIVITY } from '../workflows/staged-attempt-contract.js';
import { workflowIdForTask } from '../workflows/task-contract.js';
import { terminateRunning } from './support/cleanup.js';
import { eventually } from './support/eventually.js';
import { concurrencyCounter, newKey, stagedAttemptParked, waitForKey } from './support/flow-keys.js';
import { handOversIn } from './support/flow-handoff.js';
import { Receiver } from './support/receiver.js';
import { startHarness, stopOwnServer, workflowBundle, type Harness } from './support/harness.js';
import { Worker } from '@temporalio/worker';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { setTimeout as delay } from 'node:timers/promises';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** How long the worker's signals of unstage notices are held back in the test that orders them. */
const UNSTAGE_SIGNAL_DELAY_MS = 2_000;

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

async function historyOf(workflowId: string): Promise<HistoryEvent[]> {
  return (await harness.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
}

async function handOvers(key: string): Promise<SlotHandOver[]> {
  return handOversIn(await historyOf(limiterWorkflowId(key)));
}

/** The task's staged attempts' activities: how many were scheduled, and how many ended (any way). */
async function stagedActivities(taskId: string): Promise<{ scheduled: number; ended: number }> {
  const scheduled = new Set<string>();
  let ended = 0;
  for (const event of await historyOf(workflowIdForTask(taskId))) {
    if (event.activityTaskScheduledEventAttributes?.activityType?.name === CALLBACK_STAGED_ACTIVITY) {
      scheduled.add(String(event.eventId));
    }
    const end =
      event.activityTaskCompletedEventAttributes ??
      event.activityTaskFailedEventAttributes ??
      event.activityTaskCanceledEventAttributes ??
      event.activityTaskTimedOutEventAttributes;
    if (end != null && scheduled.has(String(end.scheduledEventId))) ended++;
  }
  return { scheduled: scheduled.size, ended };
}

/** Whether the task's history holds a stage notice unstaging it. */
async function unstageHeard(taskId: string): Promise<boolean> {
  return (await historyOf(workflowIdForTask(taskId))).some((event) => {
    const signalled = event.workflowExecutionSignaledEventAttributes;
    if (signalled?.signalName !== slotStagedSignal.name) return false;
    return defaultPayloadConverter.fromPayload<{ staged: boolean }>(signalled.input!.payloads![0]! as Payload).staged === false;
  });
}

const parkedNow = (taskId: string): Promise<boolean> => stagedAttemptParked(harness, taskId);

/** A callee that holds every call until `open()`, then answers after `ms`. */
function gatedCallee(path: string, ms: number): { open: () => void; peak: () => number } {
  let open = (): void => undefined;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const counter = concurrencyCounter(ms, gate);
  receiver.always(path, counter.responder);
  return { open, peak: counter.peak };
}

describe('staged hand-over', () => {
  it('hands the slot of an attempt that ends to a staged attempt parked in the same worker, keeping the count', async () => {
    const key = newKey('staged');
    const callee = gatedCallee('/staged', 300);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      ids.push(await harness.createTask({ callbackUrl: receiver.url('/staged'), flowControl: { key, parallelism: 2 } }));
    }
    // Two calls held, the next two staged (their attempts parked), four waiting.
    await waitForKey(
      harness,
      key,
      (view) => view.inFlight === 2 && view.waiting === 6 && view.staged === 6,
      'two in flight, the six waiting staged',
    );
    // Their attempts park (start) at their own pace: the hand-overs are counted once all six do.
    await eventually(async () => ((await Promise.all(ids.map(parkedNow))).filter(Boolean).length === 6 ? true : undefined), {
      timeoutMs: 60_000,
      what: 'six staged attempts parked',
    });
    callee.open();
    const views = await Promise.all(ids.map((id) => harness.waitForEnd(id, { timeoutMs: 60_000 })));
    for (const view of views) {
      assert.equal(view.status, 'succeeded');
      assert.equal(view.attempts, 1);
      assert.deepEqual(view.flowControl, { key, waiting: false });
    }
    assert.equal(callee.peak(), 2, `peak in flight ${callee.peak()}`);
    assert.equal(receiver.to('/staged').length, 8);
    // Every task ended after its first held call went a slot on, here, to a parked attempt.
    const given = await handOvers(key);
    assert.ok(given.length >= 4, `hand-overs: ${given.length}`);
    for (const { to } of given) assert.ok(ids.includes(to.taskId));
    // A parked attempt that was handed a slot is the task's one attempt, as the API lists it.
    const handedTo = given[0]!.to.taskId;
    const attempts = await harness.api('GET', `/v1/tasks/${handedTo}/attempts`);
    assert.equal(attempts.status, 200, JSON.stringify(attempts.body));
    const callbacks = (attempts.body.attempts as Array<{ kind: string; outcome: string }>).filter((a) => a.kind === 'callback');
    assert.deepEqual(
      callbacks.map((a) => a.outcome),
      ['succeeded'],
    );
    const idle = await waitForKey(harness, key, (view) => view.inFlight === 0, 'idle');
    assert.equal(idle.waiting, 0);
    assert.equal(idle.staged, 0);
    // The new paths replay as they ran: a task handed a slot, and the limiter that staged it.
    for (const workflowId of [workflowIdForTask(handedTo), limiterWorkflowId(key)]) {
      const history = await harness.client.workflow.getHandle(workflowId).fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
    }
  });

  it('a pause stands the staged attempts down: nothing more starts until the resume', async () => {
    const key = newKey('staged-pause');
    const callee = gatedCallee('/staged-pause', 0);
    const blocker = await harness.createTask({
      callbackUrl: receiver.url('/staged-pause'),
      flowControl: { key, parallelism: 1 },
    });
    await waitForKey(harness, key, (view) => view.inFlight === 1, 'the blocker holding the slot');
    const next = await harness.createTask({ callbackUrl: receiver.url('/staged-pause'), flowControl: { key, parallelism: 1 } });
    const last = await harness.createTask({ callbackUrl: receiver.url('/staged-pause'), flowControl: { key, parallelism: 1 } });
    await waitForKey(harness, key, (view) => view.staged === 2 && view.waiting === 2, 'both staged');
    await eventually(async () => ((await stagedActivities(next)).scheduled === 1 ? true : undefined), {
      what: 'the staged attempt scheduled',
    });

    await harness.api('POST', `/v1/flow-control/${key}/pause`);
    await waitForKey(harness, key, (view) => view.paused === true && view.staged === 0, 'unstaged');
    // The parked attempts stood down (their activity ended without a call) before the blocker's ends.
    for (const id of [next, last]) {
      await eventually(async () => ((await stagedActivities(id)).ended === 1 ? true : undefined), {
        what: 'the staged attempt to stand down',
      });
    }
    // And parked no more: none is left for the blocker's slot to be handed to while the key is paused.
    for (const id of [next, last]) assert.deepEqual(await stagedActivities(id), { scheduled: 1, ended: 1 });
    callee.open();
    assert.equal((await harness.waitForEnd(blocker)).status, 'succeeded');
    await waitForKey(harness, key, (view) => view.inFlight === 0 && view.waiting === 2, 'the slot free, both waiting');
    assert.equal(receiver.to('/staged-pause').length, 1);
    assert.deepEqual(await handOvers(key), []);
    const waiting = await harness.task(next);
    assert.equal(waiting.status, 'pending');
    assert.equal(waiting.attempts, 0);

    await harness.api('POST', `/v1/flow-control/${key}/resume`);
    assert.equal((await harness.waitForEnd(next)).status, 'succeeded');
    assert.equal((await harness.waitForEnd(last)).status, 'succeeded');
    assert.equal(receiver.to('/staged-pause').length, 3);
  });

  it('a park its worker stood down on an unstage the task has not heard of yet is not followed by another', async () => {
    // The worker stands a park down as it delivers the unstage notice, before it signals the task:
    // the task may read its park's end first. Here the notice's signal is held back to make sure.
    const own = await startHarness({
      workerClientInterceptors: {
        workflow: [
          {
            async signal(input, next) {
              const notice = input.args[0] as { staged?: boolean } | undefined;
              if (input.signalName === slotStagedSignal.name && notice?.staged === false) await delay(UNSTAGE_SIGNAL_DELAY_MS);
              return next(input);
            },
          },
        ],
      },
    });
    try {
      const key = newKey('staged-unheard');
      const callee = gatedCallee('/staged-unheard', 0);
      const create = (): Promise<string> =>
        own.createTask({ callbackUrl: receiver.url('/staged-unheard'), flowControl: { key, parallelism: 1 } });
      const blocker = await create();
      await waitForKey(own, key, (view) => view.inFlight === 1, 'the blocker holding the slot');
      const staged = await create();
      await eventually(async () => ((await parkedNow(staged)) ? true : undefined), { what: 'the staged attempt parked' });
      await own.api('POST', `/v1/flow-control/${key}/pause`);
      // Once the task has heard, its one park has ended: it did not park again on the notice it had.
      await eventually(async () => ((await unstageHeard(staged)) ? true : undefined), { what: 'the unstage heard' });
      assert.deepEqual(await stagedActivities(staged), { scheduled: 1, ended: 1 });
      callee.open();
      assert.equal((await own.waitForEnd(blocker)).status, 'succeeded');
      await waitForKey(own, key, (view) => view.inFlight === 0 && view.waiting === 1, 'the slot free, the task waiting');
      assert.deepEqual(await handOvers(key), []);
      await own.api('POST', `/v1/flow-control/${key}/resume`);
      const view = await own.waitForEnd(staged);
      assert.equal(view.status, 'succeeded');
      assert.equal(view.attempts, 1);
      assert.equal(receiver.to('/staged-unheard').length, 2);
    } finally {
      await terminateRunning(own);
      await own.close();
    }
  });

  it('a worker with no room for another park turns it away: the task waits for its grant, not parking again', async () => {
    const own = await startHarness({ env: { ASYNCQUEUE_WORKER_MAX_STAGED_ATTEMPTS: '1' } });
    try {
      const key = newKey('staged-no-room');
      const callee = gatedCallee('/staged-no-room', 0);
      const create = (): Promise<string> =>
        own.createTask({ callbackUrl: receiver.url('/staged-no-room'), flowControl: { key, parallelism: 1 } });
      const blocker = await create();
      await waitForKey(own, key, (view) => view.inFlight === 1, 'the blocker holding the slot');
      const staged = [await create(), await create()];
      await waitForKey(own, key, (view) => view.staged === 2, 'both staged');
      // One parks; the other's park was turned away and it parks no more on that notice.
      await eventually(
        async () => {
          const activities = await Promise.all(staged.map(stagedActivities));
          const parked = await Promise.all(staged.map(parkedNow));
          return parked.filter(Boolean).length === 1 && activities.some((a) => a.scheduled === 1 && a.ended === 1)
            ? true
            : undefined;
        },
        { what: 'one parked, one turned away' },
      );
      callee.open();
      for (const id of [blocker, ...staged]) {
        const view = await own.waitForEnd(id, { timeoutMs: 60_000 });
        assert.equal(view.status, 'succeeded');
        assert.equal(view.attempts, 1);
      }
      assert.equal(callee.peak(), 1);
      assert.equal(receiver.to('/staged-no-room').length, 3);
      const parks = await Promise.all(staged.map(stagedActivities));
      assert.ok(
        parks.every((p) => p.scheduled === 1),
        `each staged task parked once: ${JSON.stringify(parks)}`,
      );
    } finally {
      await terminateRunning(own);
      await own.close();
    }
  });

  it('a cancel ends a staged task at once, without a callback, and frees its place', async () => {
    const key = newKey('staged-cancel');
    const callee = gatedCallee('/staged-cancel', 0);
    const blocker = await harness.createTask({
      callbackUrl: receiver.url('/staged-cancel'),
      flowControl: { key, parallelism: 1 },
    });
    await waitForKey(harness, key, (view) => view.inFlight === 1, 'the blocker holding the slot');
    const staged = await harness.createTask({
      callbackUrl: receiver.url('/staged-cancel-never'),
      flowControl: { key, parallelism: 1 },
    });
    await waitForKey(harness, key, (view) => view.staged === 1, 'one staged');
    await eventually(async () => ((await stagedActivities(staged)).scheduled === 1 ? true : undefined), {
      what: 'the staged attempt scheduled',
    });
    const cancel = await harness.api('POST', `/v1/tasks/${staged}/cancel`, { reason: 'not needed' });
    assert.equal(cancel.status, 202);
    const view = await harness.waitForEnd(staged);
    assert.equal(view.status, 'cancelled');
    assert.equal(view.attempts, 0);
    const attempts = await harness.api('GET', `/v1/tasks/${staged}/attempts`);
    assert.deepEqual(
      (attempts.body.attempts as Array<{ kind: string }>).filter((a) => a.kind === 'callback'),
      [],
    );
    await waitForKey(harness, key, (view) => view.waiting === 0 && view.staged === 0, 'no waiter left');
    callee.open();
    assert.equal((await harness.waitForEnd(blocker)).status, 'succeeded');
    assert.equal(receiver.to('/staged-cancel-never').length, 0);
  });

  it('a worker that stops makes its parked attempts stand down (no attempt counted); they park again when one runs', async () => {
    // A stop that waits as long as the blocker's held call takes: with the suite's 1 s grace, a
    // loaded cluster cut the call off (a second attempt) before the stand-down could be read.
    const own = await startHarness({ env: { ASYNCQUEUE_WORKER_SHUTDOWN_GRACE: '60' } });
    try {
      const key = newKey('staged-stop');
      const callee = gatedCallee('/staged-stop', 0);
      const create = (): Promise<string> =>
        own.createTask({ callbackUrl: receiver.url('/staged-stop'), flowControl: { key, parallelism: 1 } });
      const blocker = await create();
      await waitForKey(own, key, (view) => view.inFlight === 1, 'the blocker holding the slot');
      const staged = await create();
      await eventually(async () => ((await parkedNow(staged)) ? true : undefined), { what: 'the staged attempt parked' });
      // The blocker's call is held: the worker's stop waits for it, so it is let go once the park ended.
      const stopping = own.stopWorker();
      await eventually(async () => ((await stagedActivities(staged)).ended === 1 ? true : undefined), {
        what: 'the parked attempt to stand down',
      });
      callee.open();
      await stopping;
      await own.startWorker();
      for (const id of [blocker, staged]) {
        const view = await own.waitForEnd(id, { timeoutMs: 60_000 });
        assert.equal(view.status, 'succeeded');
        assert.equal(view.attempts, 1);
      }
      assert.equal(receiver.to('/staged-stop').length, 2);
    } finally {
      await terminateRunning(own);
      await own.close();
    }
  });

  it('a waiter of better priority takes the place of the last staged one, and is served first', async () => {
    const key = newKey('staged-priority');
    const callee = gatedCallee('/staged-priority', 0);
    const create = (name: string, priority?: number): Promise<string> =>
      harness.createTask({
        callbackUrl: receiver.url('/staged-priority'),
        payload: { name },
        ...(priority !== undefined ? { priority } : {}),
        flowControl: { key, parallelism: 1 },
      });
    const blocker = await create('blocker');
    await waitForKey(harness, key, (view) => view.inFlight === 1, 'the blocker holding the slot');
    // Parallelism 1 stages up to five: five of priority 5 fill the line.
    const lows: string[] = [];
    for (let i = 1; i <= 5; i++) lows.push(await create(`low-${i}`, 5));
    await waitForKey(harness, key, (view) => view.staged === 5, 'five staged');
    const high = await create('high', 1);
    // The last of the line stood down for the high one, which parks in its place.
    await eventually(
      async () => {
        const [last, better] = await Promise.all([stagedActivities(lows[4]!), parkedNow(high)]);
        return last.ended >= 1 && better ? true : undefined;
      },
      { what: 'the high-priority task staged in the place of the last low one' },
    );
    // The order among equals is the parked ones': the four still staged must have parked.
    await eventually(async () => ((await Promise.all(lows.slice(0, 4).map(parkedNow))).every(Boolean) ? true : undefined), {
      timeoutMs: 60_000,
      what: 'the four low ones still staged parked',
    });
    callee.open();
    for (const id of [blocker, high, ...lows]) assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
    assert.deepEqual(
      receiver.to('/staged-priority').map((call) => JSON.parse(call.body).name),
      ['blocker', 'high', 'low-1', 'low-2', 'low-3', 'low-4', 'low-5'],
    );
  });

  it('a limiter run begins with the line the run before it ended with: a staged line that emptied stays empty', async () => {
    const key = newKey('staged-runs');
    const first = await harness.client.workflow.signalWithStart(FLOW_LIMITER_WORKFLOW_TYPE, {
      ...limiterStartOptions(
        {
          key,
          limits: { parallelism: 1, rate: null, period: 1 },
          paused: false,
          holderCheckIntervalMs: 60_000,
          maxHistoryEvents: 40,
        },
        harness.config.taskQueue,
      ),
      signal: configureFlowSignal,
      signalArgs: [{}],
    });
    const limiter = harness.client.workflow.getHandle(first.workflowId);
    /** Signals that change nothing until the run continues as new; the new run's id. */
    const nextRun = async (): Promise<string> => {
      const before = (await limiter.describe()).runId;
      return eventually(
        async () => {
          await limiter.signal(configureFlowSignal, {});
          const now = (await limiter.describe()).runId;
          return now !== before ? now : undefined;
        },
        { what: `a run after ${before}` },
      );
    };
    const callee = gatedCallee('/staged-runs', 50);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(await harness.createTask({ callbackUrl: receiver.url('/staged-runs'), flowControl: { key, parallelism: 1 } }));
    }
    await waitForKey(harness, key, (view) => view.inFlight === 1 && view.staged === 2, 'one in flight, two staged');
    // A run that begins with two staged, which all go through it.
    await nextRun();
    callee.open();
    for (const id of ids) assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
    await waitForKey(harness, key, (view) => view.inFlight === 0 && view.waiting === 0, 'idle');
    // The run after it begins idle too (it once began with the staged line its predecessor began with).
    await nextRun();
    const view = await waitForKey(harness, key, () => true, 'read');
    assert.deepEqual([view.inFlight, view.waiting, view.staged], [0, 0, 0]);
  });
});
