/**
 * A flow-controlled attempt whose call is over stays open until its limiter has heard that the
 * slot is free (activities/flow-control.ts withEarlyRelease), and a signal can take seconds on a
 * loaded server. It beats meanwhile: without beats its heartbeat timeout ended an attempt whose
 * call had succeeded, and the task called again (found under load in the continue-as-new test).
 * Here the signal is slowed on its way (a client interceptor) to a real limiter on a real server.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { withEarlyRelease } from '../activities/flow-control.js';
import { SlotRelay } from '../activities/slot-relay.js';
import {
  FLOW_LIMITER_WORKFLOW_TYPE,
  configureFlowSignal,
  limiterStartOptions,
  releaseSlotSignal,
} from '../workflows/flow-control-contract.js';
import type { CallbackOutcome } from '../workflows/task-contract.js';
import { newKey } from './support/flow-keys.js';
import { handOversIn } from './support/flow-handoff.js';
import { stopOwnServer, temporalAddress } from './support/harness.js';

/** How long each signal of this client waits before it leaves. */
const SIGNAL_DELAY_MS = 800;

let connection: Connection;
let client: Client;

before(async () => {
  connection = await Connection.connect({ address: await temporalAddress() });
  client = new Client({
    connection,
    interceptors: {
      workflow: [
        {
          async signal(input, next) {
            await delay(SIGNAL_DELAY_MS);
            return next(input);
          },
        },
      ],
    },
  });
});

after(async () => {
  await connection.close();
  await stopOwnServer();
});

describe('passing a flow slot on', () => {
  it('beats while the limiter is told, and reports the slot released once it has heard', async () => {
    const key = newKey('slow-limiter');
    // A limiter no worker runs (its task queue has no poller): it takes signals all the same.
    const limiter = await client.workflow.signalWithStart(FLOW_LIMITER_WORKFLOW_TYPE, {
      ...limiterStartOptions(
        { key, limits: { parallelism: 1, rate: null, period: 1 }, paused: false, holderCheckIntervalMs: 60_000 },
        `nobody-polls-${key}`,
      ),
      signal: configureFlowSignal,
      signalArgs: [{}],
    });
    try {
      const environment = new MockActivityEnvironment({ heartbeatTimeoutMs: 250, attempt: 1 }, { client });
      const beats: unknown[] = [];
      environment.on('heartbeat', (details: unknown) => beats.push(details));
      // The call itself is over at once; what is measured is the attempt's wait for the limiter.
      const called: CallbackOutcome = { kind: 'succeeded', attempt: 1, statusCode: 200, result: { ok: true } };
      const attempt = withEarlyRelease(async () => called, new SlotRelay());
      const outcome = await environment.run(attempt, {
        taskId: 'slow-release',
        url: 'http://127.0.0.1:1/unused',
        payload: null,
        headers: {},
        timeoutMs: 1_000,
        flowSlot: { key, request: 1 },
      });
      assert.deepEqual(outcome, { ...called, slotReleased: true });
      // Every 100 ms (40 % of 250) while the signal took 800: a heartbeat timeout of 250 ms never fired.
      assert.ok(beats.length >= 4, `beats: ${beats.length}`);
      for (const beat of beats) assert.deepEqual(beat, { attempt: 1 });
      const events = (await limiter.fetchHistory()).events ?? [];
      const releases = events.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === releaseSlotSignal.name);
      assert.equal(releases.length, 1);
      assert.equal(handOversIn(events).length, 0);
    } finally {
      await limiter.terminate('test over');
    }
  });
});
