/**
 * `node dist/test/flow-control-stress.js`: flow control's continue-as-new scenario on several keys
 * at once, round after round, against one Temporal server (its own dev server, or
 * ASYNCQUEUE_TEST_TEMPORAL_ADDRESS). Each key: a limiter continuing as new every 40 events,
 * parallelism 2, TASKS tasks (default 16) with 150 ms callbacks created back to back. After each
 * key drains it must be idle (nothing held, nothing in line), have had at most 2 calls in flight
 * at the callee, and no grant may have found a task ended. A failing key's limiter runs are
 * written to /tmp for reading (`flow-stress-<key>.json`). Exits 1 when any key failed.
 * The suite's single run of this scenario passed where this found a slot leaked by a stale line
 * carried through continue-as-new (1 key in 16), a duplicate call after a heartbeat timeout, and
 * a wake applied to the wrong task's park: ROUNDS (default 5) × KEYS (default 4) gives it room.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FLOW_LIMITER_WORKFLOW_TYPE, configureFlowSignal, limiterStartOptions } from '../workflows/flow-control-contract.js';
import { terminateRunning } from './support/cleanup.js';
import { concurrencyCounter, flowKey, newKey } from './support/flow-keys.js';
import { eventually } from './support/eventually.js';
import { grantsToEndedTasks } from './support/history.js';
import { Receiver } from './support/receiver.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

const rounds = Number(process.env.ROUNDS ?? 5);
const keysPerRound = Number(process.env.KEYS ?? 4);
const tasksPerKey = Number(process.env.TASKS ?? 16);
const parallelism = 2;

/** Runs one key through the scenario; what went wrong with it (empty: nothing). */
async function runKey(harness: Harness, receiver: Receiver, name: string): Promise<string[]> {
  const key = newKey(name);
  const limiter = await harness.client.workflow.signalWithStart(FLOW_LIMITER_WORKFLOW_TYPE, {
    ...limiterStartOptions(
      {
        key,
        limits: { parallelism, rate: null, period: 1 },
        paused: false,
        holderCheckIntervalMs: 600_000,
        maxHistoryEvents: 40,
      },
      harness.config.taskQueue,
    ),
    signal: configureFlowSignal,
    signalArgs: [{}],
  });
  const counter = concurrencyCounter(150);
  receiver.always(`/${key}`, counter.responder);
  const ids: string[] = [];
  for (let i = 0; i < tasksPerKey; i++) {
    ids.push(await harness.createTask({ callbackUrl: receiver.url(`/${key}`), flowControl: { key, parallelism } }));
  }
  const problems: string[] = [];
  for (const id of ids) {
    const view = await harness.waitForEnd(id, { timeoutMs: 120_000 });
    if (view.status !== 'succeeded') problems.push(`task ${id} ${view.status}`);
  }
  const idle = await eventually(
    async () => {
      const view = await flowKey(harness, key);
      return view.inFlight === 0 && view.waiting === 0 ? view : undefined;
    },
    { timeoutMs: 10_000, what: `key ${key} idle` },
  ).catch(async () => flowKey(harness, key));
  if (idle.inFlight !== 0 || idle.waiting !== 0) problems.push(`not idle: ${JSON.stringify(idle)}`);
  if (counter.peak() > parallelism) problems.push(`peak in flight ${counter.peak()}`);
  const ended = await grantsToEndedTasks(harness, limiter.workflowId, limiter.signaledRunId);
  if (ended.length > 0) problems.push(`grants found ${ended.length} tasks ended`);
  if (problems.length > 0) {
    const file = path.join(tmpdir(), `flow-stress-${key}.json`);
    const runs = [];
    for (let runId: string | undefined = limiter.signaledRunId; runId !== undefined;) {
      const history = await harness.client.workflow.getHandle(limiter.workflowId, runId).fetchHistory();
      runs.push(history);
      runId =
        history.events?.find((e) => e.workflowExecutionContinuedAsNewEventAttributes)
          ?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    }
    writeFileSync(file, JSON.stringify({ key, tasks: ids, runs }, null, 1));
    problems.push(`limiter runs in ${file}`);
  }
  return problems;
}

async function main(): Promise<void> {
  const harness = await startHarness();
  const receiver = await Receiver.start();
  let failed = 0;
  try {
    for (let round = 1; round <= rounds; round++) {
      const results = await Promise.all(
        Array.from({ length: keysPerRound }, (_, k) => runKey(harness, receiver, `stress-${round}-${k}`)),
      );
      for (const problems of results.filter((p) => p.length > 0)) {
        failed++;
        process.stdout.write(`FAILED: ${problems.join('; ')}\n`);
      }
      process.stdout.write(
        `round ${round} of ${rounds}: ${keysPerRound} keys × ${tasksPerKey} tasks, ${failed} keys failed so far\n`,
      );
    }
  } finally {
    await terminateRunning(harness);
    await harness.close();
    await receiver.close();
    await stopOwnServer();
  }
  process.stdout.write(`${failed === 0 ? 'PASS' : 'FAIL'}: ${rounds * keysPerRound} keys, ${failed} failed\n`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
