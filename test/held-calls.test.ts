/**
 * The held-call registry on its own: what an `abortHeldCall` aborts. Its effect on a real held call,
 * through the workflow's cut-off, is tested in cancel-delay-list.test.ts and
 * temporal-operations.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CancelRequestedError, HeldCalls } from '../activities/held-calls.js';

describe('held calls', () => {
  it('aborts every call of the cancelled task and nothing else, and forgets released calls', () => {
    const held = new HeldCalls();
    const kept = held.hold('kept');
    const first = held.hold('cancelled');
    const second = held.hold('cancelled');
    assert.equal(held.size, 3);
    assert.equal(held.abort('cancelled'), 2);
    assert.ok(first.signal.aborted && second.signal.aborted);
    assert.ok(first.signal.reason instanceof CancelRequestedError);
    assert.equal(kept.signal.aborted, false);
    assert.equal(held.abort('unknown'), 0);
    for (const call of [kept, first, second]) call.release();
    assert.equal(held.size, 0);
    assert.equal(held.abort('cancelled'), 0, 'a released call is not aborted again');
  });
});
