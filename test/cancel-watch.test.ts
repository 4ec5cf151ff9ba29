/**
 * The worker's cancel watch on its own: when it asks Temporal, and what it aborts. (Its effect on
 * a real held call is tested in cancel-delay-list.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CancelRequestedError, CancelWatch } from '../activities/cancel-watch.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('cancel watch', () => {
  it('asks only while a call has run longer than one interval, and aborts only the cancelled task', async () => {
    let queries = 0;
    const cancelling = new Set<string>();
    const watch = new CancelWatch({
      intervalMs: 50,
      cancelling: async () => {
        queries++;
        return cancelling;
      },
      onError: (err) => assert.fail(String(err)),
    });

    // A call that ends within its first interval costs no query.
    const quick = watch.watch('quick');
    await sleep(20);
    quick.release();
    await sleep(150);
    assert.equal(queries, 0);

    const kept = watch.watch('kept');
    const cancelled = watch.watch('cancelled');
    await sleep(120);
    assert.ok(queries >= 1, 'held calls are looked up');
    assert.equal(kept.signal.aborted, false);
    assert.equal(cancelled.signal.aborted, false);

    cancelling.add('cancelled');
    await sleep(120);
    assert.equal(cancelled.signal.aborted, true);
    assert.ok(cancelled.signal.reason instanceof CancelRequestedError);
    assert.equal(kept.signal.aborted, false);

    kept.release();
    cancelled.release();
    assert.equal(watch.watching, 0);
    const after = queries;
    await sleep(150);
    assert.equal(queries, after, 'no queries once nothing is held');
  });

  it('reports a failed lookup and tries again next interval', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const watch = new CancelWatch({
      intervalMs: 30,
      cancelling: async () => {
        calls++;
        if (calls === 1) throw new Error('visibility unavailable');
        return new Set(['t']);
      },
      onError: (err) => errors.push(err),
    });
    const held = watch.watch('t');
    for (let i = 0; i < 100 && !held.signal.aborted; i++) await sleep(10);
    assert.equal(held.signal.aborted, true);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /visibility unavailable/);
    held.release();
  });
});
