/**
 * The benchmark's replayed workflow cost (tools/bench/replay-cost.ts): it replays the histories it
 * is given through the bundle it is given, states a CPU figure per round, and refuses to state one
 * when the histories do not replay (a figure for an error path would look like a fast workflow).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { replayCosts } from '../tools/bench/replay-cost.js';
import { workflowBundle } from './support/harness.js';

const HISTORIES_DIR = fileURLToPath(new URL('../../test/histories/', import.meta.url));
const stored = async (name: string) => historyFromJSON(JSON.parse(await readFile(`${HISTORIES_DIR}${name}`, 'utf8')));

describe('bench replay cost', () => {
  it('replays each history through the bundle, a CPU figure per round, and none for a target without histories', async () => {
    const histories = [await stored('v2-delayed-then-succeeded.json'), await stored('v2-cancelled-in-flight.json')];
    const cost = await replayCosts(
      { asyncqueue: { bundle: await workflowBundle(), histories }, baseline: { bundle: await workflowBundle(), histories: [] } },
      { replays: 4, rounds: 2 },
    );
    assert.equal(cost.baseline, null);
    assert.equal(cost.asyncqueue?.histories, 2);
    assert.equal(cost.asyncqueue?.cpuMsPerTask.length, 2);
    assert.ok(cost.asyncqueue!.cpuMsPerTask.every((ms) => ms > 0));
    assert.equal(cost.asyncqueue?.bestCpuMsPerTask, Math.min(...cost.asyncqueue!.cpuMsPerTask));
  });

  it('fails when a history does not replay through the bundle', async () => {
    const history = await stored('v2-delayed-then-succeeded.json');
    // The same task, its workflow type renamed: the bundle has no such workflow.
    const started = history.events![0]!.workflowExecutionStartedEventAttributes!;
    const renamed = {
      ...history,
      events: [
        {
          ...history.events![0]!,
          workflowExecutionStartedEventAttributes: { ...started, workflowType: { name: 'noSuchWorkflow' } },
        },
        ...history.events!.slice(1),
      ],
    };
    await assert.rejects(
      replayCosts({ asyncqueue: { bundle: await workflowBundle(), histories: [renamed] } }, { replays: 2, rounds: 1 }),
      /2 of 2 replays failed/,
    );
  });
});
