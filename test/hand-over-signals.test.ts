/**
 * A worker's hand-over signals (activities/hand-over-signals.ts): one in flight per key, those
 * made meanwhile carried together by the next, each caller told whether its own got through.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HandOverSignals } from '../activities/hand-over-signals.js';
import type { SlotHandOver, SlotHandOvers } from '../workflows/flow-control-contract.js';

const handOver = (from: string, to: string): SlotHandOver => ({
  from: { taskId: from, request: 1 },
  to: { taskId: to, request: 1 },
});

/** A signal that waits until `release()`; every signal it was given. */
function heldSignal(fail = false): {
  deliver: (signal: SlotHandOvers) => Promise<void>;
  sent: SlotHandOvers[];
  release: () => void;
} {
  const sent: SlotHandOvers[] = [];
  let release = (): void => undefined;
  return {
    sent,
    release: () => release(),
    deliver: (signal) => {
      sent.push(signal);
      return new Promise((resolve, reject) => {
        release = () => (fail ? reject(new Error('the server is away')) : resolve());
      });
    },
  };
}

const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('hand-over signals', () => {
  it('sends the first at once and those made meanwhile together in the next, per key', async () => {
    const signals = new HandOverSignals();
    const k = heldSignal();
    const other = heldSignal();
    const first = signals.send('k', handOver('a', 'b'), k.deliver);
    const second = signals.send('k', handOver('b', 'c'), k.deliver);
    const third = signals.send('k', handOver('c', 'd'), k.deliver);
    const elsewhere = signals.send('other', handOver('x', 'y'), other.deliver);
    await settled();
    assert.deepEqual(k.sent, [handOver('a', 'b')]);
    assert.deepEqual(other.sent, [handOver('x', 'y')], 'another key does not wait');
    k.release();
    assert.equal(await first, true);
    await settled();
    assert.deepEqual(k.sent[1], { ...handOver('b', 'c'), also: [handOver('c', 'd')] });
    k.release();
    assert.deepEqual(await Promise.all([second, third]), [true, true]);
    other.release();
    assert.equal(await elsewhere, true);
    // Nothing in flight: the next goes alone, at once.
    const later = signals.send('k', handOver('d', 'e'), k.deliver);
    await settled();
    assert.deepEqual(k.sent[2], handOver('d', 'e'));
    k.release();
    assert.equal(await later, true);
  });

  it('tells every hand-over a failed signal carried that it did not get through', async () => {
    const signals = new HandOverSignals();
    const k = heldSignal(true);
    const first = signals.send('k', handOver('a', 'b'), k.deliver);
    const second = signals.send('k', handOver('b', 'c'), k.deliver);
    const third = signals.send('k', handOver('c', 'd'), k.deliver);
    await settled();
    k.release();
    await settled();
    k.release();
    assert.deepEqual(await Promise.all([first, second, third]), [false, false, false]);
  });
});
