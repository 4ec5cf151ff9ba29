/**
 * The API's coalescing of progress reports (src/api/tasks/progress-coalescer.ts), on its own: what
 * a read shows while a held-back report is on its way to the workflow.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProgressCoalescer } from '../src/api/tasks/progress-coalescer.js';
import type { ProgressUpdate } from '../workflows/task-contract.js';
import { eventually } from './support/eventually.js';

const update = (percent: number): ProgressUpdate => ({ percent, reportedAt: new Date().toISOString() });

describe('progress coalescer', () => {
  it('shows a held-back report while its signal is in flight, and stops once the workflow has it', async () => {
    const sent: number[] = [];
    let release: (() => void) | undefined;
    const coalescer = new ProgressCoalescer({
      intervalMs: 20,
      // The first send answers at once; the deferred one waits until the test lets it.
      send: (_taskId, report) => {
        sent.push(report.percent!);
        return sent.length === 1 ? Promise.resolve() : new Promise<void>((resolve) => (release = resolve));
      },
      onDeferredError: () => undefined,
    });
    assert.equal(await coalescer.report('t', update(1)), 'sent');
    assert.equal(await coalescer.report('t', update(2)), 'coalesced');
    assert.equal(await coalescer.report('t', update(3)), 'coalesced');
    assert.equal(coalescer.latest('t')?.percent, 3);
    // The interval ends: 3 is being sent, and reads must still show it (the workflow has 1).
    await eventually(async () => (release !== undefined ? true : undefined), { what: 'the deferred send' });
    assert.deepEqual(sent, [1, 3]);
    assert.equal(coalescer.latest('t')?.percent, 3);
    // A report meanwhile is held, not sent: one signal per interval still.
    assert.equal(await coalescer.report('t', update(4)), 'coalesced');
    assert.equal(coalescer.latest('t')?.percent, 4);
    release!();
    await eventually(async () => (sent.length === 3 ? true : undefined), { what: 'the next deferred send' });
    assert.deepEqual(sent, [1, 3, 4]);
    release!();
    await eventually(async () => (coalescer.latest('t') === undefined ? true : undefined), { what: 'nothing held' });
    await coalescer.flush();
  });
});
