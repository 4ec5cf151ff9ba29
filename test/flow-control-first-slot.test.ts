/**
 * A due flow-controlled task's first slot, asked for by the API before the task starts
 * (src/api/flow-control/first-slot.ts): a free slot travels in the task's input, and a grant that
 * did not reach its task is granted again when the task asks for it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { WithStartWorkflowOperation } from '@temporalio/client';
import {
  FLOW_LIMITER_WORKFLOW_TYPE,
  limiterStartOptions,
  limiterWorkflowId,
  slotStartedSignal,
  tryAcquireSlotUpdate,
  type FirstSlotAnswer,
  type FlowLimiterInput,
  type FlowLimits,
} from '../workflows/flow-control-contract.js';
import { workflowIdForTask, type TaskInput } from '../workflows/task-contract.js';
import { ANONYMOUS } from '../src/api/api-keys.js';
import { taskIdForKey } from '../src/api/tasks/idempotency.js';
import { terminateRunning } from './support/cleanup.js';
import { eventually } from './support/eventually.js';
import { concurrencyCounter, newKey, waitForKey } from './support/flow-keys.js';
import { Receiver } from './support/receiver.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

let harness: Harness;
let receiver: Receiver;

before(async () => {
  // The burst below counts callback calls exactly. With the harness's 2 s heartbeat timeout, a
  // 60-task burst on a loaded 2-core machine (the cluster's five processes beside it) let calls
  // outlive their heartbeat, and Temporal rightly ran them again (83 calls for 60 tasks once in
  // CI). Heartbeats are not what this file tests (reliability tests do): give them room.
  harness = await startHarness({ env: { ASYNCQUEUE_HEARTBEAT_TIMEOUT: '30' } });
  receiver = await Receiver.start();
});

after(async () => {
  await terminateRunning(harness);
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

/** What the API asks a key's limiter before it starts a due task (first-slot.ts), asked directly. */
async function askFirstSlot(
  key: string,
  taskId: string,
  limits: FlowLimits,
  limiter: Partial<FlowLimiterInput> = {},
): Promise<FirstSlotAnswer> {
  return harness.client.workflow.executeUpdateWithStart(tryAcquireSlotUpdate, {
    args: [{ acquire: { taskId, request: 1, priority: 3, createdAt: new Date().toISOString() }, limits }],
    startWorkflowOperation: new WithStartWorkflowOperation(FLOW_LIMITER_WORKFLOW_TYPE, {
      ...limiterStartOptions({ key, limits, paused: false, holderCheckIntervalMs: 60_000, ...limiter }, harness.config.taskQueue),
      workflowIdConflictPolicy: 'USE_EXISTING',
    }),
  });
}

describe('the first slot', () => {
  it('travels in the input of a task created while its key has a slot free: no signal round through the limiter, no release from the workflow', async () => {
    const key = newKey('free');
    receiver.always('/free', concurrencyCounter(0).responder);
    const id = await harness.createTask({ callbackUrl: receiver.url('/free'), flowControl: { key, parallelism: 1, rate: 5 } });
    assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
    const events = (await harness.client.workflow.getHandle(workflowIdForTask(id)).fetchHistory()).events ?? [];
    const started = events[0]?.workflowExecutionStartedEventAttributes;
    assert.ok(started?.input?.payloads?.[0]?.data);
    const input = JSON.parse(Buffer.from(started.input.payloads[0].data).toString()) as TaskInput;
    // The key has a rate: the worker reports the call's start, and the limiter counts it from then.
    assert.deepEqual(input.flowControl?.firstSlot, { request: 1, reportStart: true });
    assert.equal(events.filter((event) => event.workflowExecutionSignaledEventAttributes).length, 0, 'no grant signalled');
    const signalled = events.flatMap((event) => event.signalExternalWorkflowExecutionInitiatedEventAttributes?.signalName ?? []);
    // Nor a release: the worker gave the slot back as the call ended, and the result says so.
    assert.deepEqual(signalled, [], 'no signal sent by the task workflow');
    await waitForKey(harness, key, (view) => view.inFlight === 0 && view.waiting === 0, 'idle');
  });

  it('is not taken ahead of a waiting task: a busy key makes the new task wait its turn', async () => {
    const key = newKey('busy');
    const counter = concurrencyCounter(300);
    receiver.always('/busy', counter.responder);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(await harness.createTask({ callbackUrl: receiver.url('/busy'), flowControl: { key, parallelism: 1 } }));
    }
    for (const id of ids) assert.equal((await harness.waitForEnd(id, { timeoutMs: 60_000 })).status, 'succeeded');
    assert.equal(counter.peak(), 1);
    const granted = await Promise.all(
      ids.map(async (id) => {
        const events = (await harness.client.workflow.getHandle(workflowIdForTask(id)).fetchHistory()).events ?? [];
        const data = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
        return (JSON.parse(Buffer.from(data!).toString()) as TaskInput).flowControl?.firstSlot !== undefined;
      }),
    );
    // The first found the slot free; the others were created while it was held.
    assert.equal(granted[0], true);
    assert.deepEqual(granted.slice(1), [false, false, false]);
    // In creation order, one at a time.
    const order = receiver.to('/busy').map((call) => String(call.headers['asyncqueue-task-id']));
    assert.deepEqual(order, ids);
  });

  it('asks for the first slots of a burst of creates for one key in few updates, each carrying the asks that queued meanwhile', async () => {
    const key = newKey('burst');
    receiver.always('/burst', concurrencyCounter(0).responder);
    // Sent one by one, 60 concurrent updates to one limiter were mostly refused (at most 10 in
    // flight per workflow) or aborted, and 20-40 of the 60 tasks started without their slot.
    const ids = await Promise.all(
      Array.from({ length: 60 }, () =>
        harness.createTask({ callbackUrl: receiver.url('/burst'), flowControl: { key, parallelism: 100 } }),
      ),
    );
    for (const id of ids) assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
    assert.equal(receiver.to('/burst').length, ids.length, 'each task called once');
    const decode = (data: Uint8Array | null | undefined): any => JSON.parse(Buffer.from(data!).toString());
    const withSlot = new Set<string>();
    for (const id of ids) {
      const events = (await harness.client.workflow.getHandle(workflowIdForTask(id)).fetchHistory()).events ?? [];
      const input = decode(events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data) as TaskInput;
      if (input.flowControl?.firstSlot !== undefined) withSlot.add(id);
    }
    // How many asks each update to the limiter carried (how many made it in time depends on
    // the machine's load: an ask still queued after FIRST_SLOT_WAIT_MS is never sent).
    const limiterEvents = (await harness.client.workflow.getHandle(limiterWorkflowId(key)).fetchHistory()).events ?? [];
    const asked = limiterEvents.flatMap((event) => {
      const input = event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input;
      if (input?.name !== 'tryAcquireSlots') return [];
      return [(decode(input.args?.payloads?.[0]?.data) as { asks: Array<{ acquire: { taskId: string } }> }).asks];
    });
    assert.ok(Math.max(...asked.map((asks) => asks.length)) >= 2, `asks per update: ${asked.map((a) => a.length).join(', ')}`);
    // Every task that has its slot in its input was asked for, and the key had room for all.
    const askedIds = new Set(asked.flat().map((ask) => ask.acquire.taskId));
    assert.ok(withSlot.size > 0);
    for (const id of withSlot) assert.ok(askedIds.has(id));
    await waitForKey(harness, key, (view) => view.inFlight === 0 && view.waiting === 0, 'idle');
  });

  it('granted but not delivered (the API stopped waiting for the answer) is granted again when the task asks', async () => {
    const key = newKey('lost-answer');
    const idempotencyKey = randomUUID();
    // The id the API derives from this key (no API keys configured here: every caller is anonymous).
    const id = taskIdForKey(ANONYMOUS, idempotencyKey);
    // What an API whose FIRST_SLOT_WAIT_MS ran out leaves behind: the limiter granted the slot,
    // and the task starts without it in its input.
    const answer = await askFirstSlot(key, id, { parallelism: 1, rate: null, period: 1 });
    assert.deepEqual(answer, { granted: true, reportStart: false });
    await waitForKey(harness, key, (view) => view.inFlight === 1, 'held for the task');
    receiver.always('/lost-answer', concurrencyCounter(0).responder);
    const created = await harness.createTask(
      { callbackUrl: receiver.url('/lost-answer'), flowControl: { key, parallelism: 1 } },
      { 'idempotency-key': idempotencyKey },
    );
    assert.equal(created, id);
    assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
    assert.equal(receiver.to('/lost-answer').length, 1);
    await waitForKey(harness, key, (view) => view.inFlight === 0 && view.waiting === 0, 'idle');
  });

  it('a repeated create (same Idempotency-Key) leaves limits set since alone; a new one sets its own', async () => {
    const key = newKey('repeated');
    receiver.always('/repeated', concurrencyCounter(0).responder);
    const body = { callbackUrl: receiver.url('/repeated'), flowControl: { key, parallelism: 1 } };
    const idempotencyKey = randomUUID();
    const id = await harness.createTask(body, { 'idempotency-key': idempotencyKey });
    assert.equal((await harness.waitForEnd(id)).status, 'succeeded');
    assert.equal((await harness.api('PUT', `/v1/flow-control/${key}`, { parallelism: 4 })).status, 200);
    const repeated = await harness.api('POST', '/v1/tasks', body, { 'idempotency-key': idempotencyKey });
    assert.equal(repeated.status, 200, JSON.stringify(repeated.body));
    assert.equal(repeated.body.id, id);
    assert.equal((await waitForKey(harness, key, () => true, 'read')).parallelism, 4, 'the PUT stands');
    // A new create with its own key sets the key's limits, the newest winning.
    const fresh = await harness.createTask(body, { 'idempotency-key': randomUUID() });
    assert.equal((await harness.waitForEnd(fresh)).status, 'succeeded');
    assert.equal((await waitForKey(harness, key, () => true, 'read')).parallelism, 1);
  });

  it("counts a rate's start from the worker's report of the call, not from the grant", async () => {
    const key = newKey('reported');
    const limits = { parallelism: null, rate: 1, period: 1 };
    const limiter = harness.client.workflow.getHandle(limiterWorkflowId(key));
    const grantedAt = Date.now();
    assert.deepEqual(await askFirstSlot(key, 'call-a', limits), { granted: true, reportStart: true });
    // Call A has not begun 1.5 s after its grant (its task was slow to start it): counted from the
    // grant, the window would have let B start by now; unreported, A's start counts as now.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal((await askFirstSlot(key, 'call-b', limits)).granted, false, 'a start not reported yet still counts');
    await limiter.signal(slotStartedSignal, { taskId: 'call-a', request: 1 });
    const reportedAt = Date.now();
    // B gets the slot once a period has passed since A's reported start, and not before.
    const grantedB = await eventually(
      async () => ((await askFirstSlot(key, 'call-b', limits)).granted ? Date.now() : undefined),
      {
        what: 'the window after the reported start',
      },
    );
    assert.ok(grantedB - reportedAt >= 1_000, `B granted ${grantedB - reportedAt} ms after A's reported start`);
    assert.ok(grantedB - grantedAt >= 2_500, `B granted ${grantedB - grantedAt} ms after A's grant`);
    await limiter.terminate('test over');
  });

  it('granted to a task that never starts is kept through the grace after its grant, then freed by the holder check', async () => {
    const key = newKey('never-started');
    // What a create leaves behind when its start fails after the grant: a holder with no workflow.
    const answer = await askFirstSlot(
      key,
      `never-started-${randomUUID()}`,
      { parallelism: 1, rate: null, period: 1 },
      { holderCheckIntervalMs: 300, unstartedHolderGraceMs: 3_000 },
    );
    assert.equal(answer.granted, true);
    receiver.always('/after-never-started', concurrencyCounter(0).responder);
    const waiting = await harness.createTask({
      callbackUrl: receiver.url('/after-never-started'),
      flowControl: { key, parallelism: 1 },
    });
    assert.equal((await harness.waitForEnd(waiting, { timeoutMs: 30_000 })).status, 'succeeded');
    // The limiter's checks, from its history: kept while recent, freed once the grace was over.
    const events = (await harness.client.workflow.getHandle(limiterWorkflowId(key)).fetchHistory()).events ?? [];
    const decode = (data: Uint8Array | null | undefined): unknown => JSON.parse(Buffer.from(data!).toString());
    const checks = events.flatMap((event) => {
      const scheduled = event.activityTaskScheduledEventAttributes;
      if (scheduled?.activityType?.name !== 'closedFlowHolders') return [];
      const completed = events.find(
        (e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === event.eventId?.toString(),
      );
      const request = decode(scheduled.input?.payloads?.[0]?.data) as { recentlyGranted?: string[] };
      const closed = decode(completed?.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data) as string[];
      return [{ recent: (request.recentlyGranted ?? []).length > 0, closed: closed.length }];
    });
    assert.ok(checks.length >= 2, `holder checks: ${JSON.stringify(checks)}`);
    assert.deepEqual(checks[0], { recent: true, closed: 0 }, 'the first check keeps the recent grant');
    assert.deepEqual(checks.at(-1), { recent: false, closed: 1 }, 'the last frees it');
  });
});
