/**
 * Workflow code safety: the workflows bundle the way the worker bundles them (a bad import fails
 * here, not in production), and every recorded history replays against the current code, so a
 * non-deterministic change fails the suite before it can break tasks that are already running.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from './support/harness.js';
import { memoWritesIn, patchMarkersIn } from './support/history.js';

const HISTORIES_DIR = fileURLToPath(new URL('../../test/histories/', import.meta.url));

describe('workflow code', () => {
  it('bundles without Node-only modules', async () => {
    const bundle = await workflowBundle();
    assert.ok(bundle.code.includes('taskWorkflow'));
    // Preloaded: the SDK evaluates the workflow modules once per V8 context, not once per task.
    assert.match(bundle.code, /function preloadModules\(\) \{\s*__webpack_require__\([^)]*"\.\/dist\/workflows\/index\.js"\)/);
  });

  it('replays every recorded history deterministically', async () => {
    const files = (await readdir(HISTORIES_DIR)).filter((name) => name.endsWith('.json')).sort();
    assert.ok(files.length >= 5, `expected recorded histories in ${HISTORIES_DIR}`);
    const histories = await Promise.all(
      files.map(async (file) => ({
        workflowId: file,
        history: historyFromJSON(JSON.parse(await readFile(`${HISTORIES_DIR}${file}`, 'utf8'))),
      })),
    );
    const results = Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories);
    let replayed = 0;
    for await (const result of results) {
      assert.equal(result.error, undefined, `${result.workflowId}: ${String(result.error)}`);
      replayed++;
    }
    assert.equal(replayed, files.length);
  });

  it('has a recorded history for each branch that is easy to break: a cancel winning over a failed attempt, a Temporal cancel, an async retry, each way of staging and asking', async () => {
    const types = async (file: string): Promise<string[]> =>
      (JSON.parse(await readFile(`${HISTORIES_DIR}${file}`, 'utf8')) as { events: { eventType: string }[] }).events.map((event) =>
        event.eventType.replace('EVENT_TYPE_', ''),
      );
    // The cut-off attempt fails (abortHeldCall aborted it) after the cancel was accepted, and the
    // workflow still completes: replaying it needs the `cancel-wins-over-failure` branch.
    const cancelWins = await types('v4-cancelled-by-cut-off-cancel-wins-over-failure.json');
    assert.ok(cancelWins.indexOf('ACTIVITY_TASK_FAILED') > cancelWins.indexOf('ACTIVITY_TASK_CANCEL_REQUESTED'));
    assert.equal(cancelWins.at(-1), 'WORKFLOW_EXECUTION_COMPLETED');
    const temporalCancel = await types('v4-cancelled-through-temporal-in-flight.json');
    assert.ok(temporalCancel.includes('WORKFLOW_EXECUTION_CANCEL_REQUESTED'));
    assert.equal(temporalCancel.at(-1), 'WORKFLOW_EXECUTION_CANCELED');
    const asyncRetry = await types('v4-async-failed-then-retried.json');
    assert.ok(asyncRetry.includes('TIMER_STARTED'), 'the backoff after a failed async attempt');
    assert.equal(asyncRetry.filter((type) => type === 'ACTIVITY_TASK_SCHEDULED').length, 3);
    // Attempt records: a retried attempt (callback 503, webhook 500) signals its record.
    const recorded = await types('v5-succeeded-after-retry-with-webhook-retry.json');
    assert.equal(recorded.filter((type) => type === 'WORKFLOW_EXECUTION_SIGNALED').length, 2);
    // Staged attempts on a queue of their own (v10), then on the task's own (v12), and the
    // limiter asked by a workflow signal (v10), then from the worker (v11 on).
    const stagedQueues = async (file: string): Promise<string[]> =>
      (
        JSON.parse(await readFile(`${HISTORIES_DIR}${file}`, 'utf8')) as {
          events: { activityTaskScheduledEventAttributes?: { activityType: { name: string }; taskQueue: { name: string } } }[];
        }
      ).events.flatMap((event) => {
        const scheduled = event.activityTaskScheduledEventAttributes;
        return scheduled?.activityType.name === 'callCallbackStaged'
          ? [scheduled.taskQueue.name.endsWith('-staged') ? 'own' : 'task']
          : [];
      });
    assert.deepEqual(new Set(await stagedQueues('v10-staged-stood-down-then-handed-over.json')), new Set(['own']));
    assert.deepEqual(new Set(await stagedQueues('v12-staged-stood-down-then-handed-over.json')), new Set(['task']));
    assert.ok(
      (await types('v10-staged-stood-down-then-handed-over.json')).includes('SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED'),
    );
    assert.ok(
      !(await types('v11-staged-stood-down-then-handed-over.json')).includes('SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED'),
    );
    // One marker per change of the flow-controlled path (v12), then one for the path (v13 on),
    // whose task also writes no memo when its slot comes.
    const eventsOf = async (file: string) =>
      historyFromJSON(JSON.parse(await readFile(`${HISTORIES_DIR}${file}`, 'utf8'))).events ?? [];
    const patches = async (file: string): Promise<string[]> => patchMarkersIn(await eventsOf(file));
    assert.deepEqual(await patches('v12-staged-stood-down-then-handed-over.json'), [
      'flow-limiter-signals-from-worker',
      'staged-on-task-queue',
    ]);
    assert.deepEqual(await patches('v13-staged-stood-down-then-handed-over.json'), ['flow-controlled-path-2']);
    assert.deepEqual(new Set(await stagedQueues('v13-staged-stood-down-then-handed-over.json')), new Set(['task']));
    const memoWrites = async (file: string): Promise<number> => memoWritesIn(await eventsOf(file));
    assert.equal(await memoWrites('v12-staged-stood-down-then-handed-over.json'), 3);
    assert.equal(await memoWrites('v13-staged-stood-down-then-handed-over.json'), 2);
    // A task whose first slot the API was refused starts with a memo saying it waits (v14 on).
    assert.equal(await memoWrites('v13-flow-controlled-cancelled-while-waiting.json'), 2);
    assert.equal(await memoWrites('v14-flow-controlled-cancelled-while-waiting.json'), 1);
  });
});
