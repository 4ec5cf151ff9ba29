/**
 * A flow-control key's state on its own (workflows/flow-key-state.ts): how releases, hand-overs
 * and asks change the count and the line, including the orders in which signals from different
 * workers and calls can arrive. The limiter that applies them is tested on a real server in
 * flow-control.test.ts and flow-control-staged.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlowKeyState } from '../workflows/flow-key-state.js';
import type { FlowWaiter } from '../workflows/flow-control-contract.js';

const marks = { reportedStarts: true, stagedHandOver: true };

let arrivals = 0;
const waiter = (taskId: string, priority = 3): FlowWaiter => ({
  taskId,
  request: 1,
  priority,
  createdAt: '2026-12-04T10:00:00.000Z',
  seq: ++arrivals,
});

/** A key at parallelism 2 whose slots `holding` hold, with `staged` staged. */
function key(holding: string[], staged: string[], parallelism = 2): FlowKeyState {
  return new FlowKeyState(
    {
      key: 'k',
      limits: { parallelism, rate: null, period: 1 },
      paused: false,
      holderCheckIntervalMs: 60_000,
      holders: Object.fromEntries(holding.map((taskId) => [taskId, { request: 1, grantedAt: 0 }])),
      staged: staged.map((taskId) => waiter(taskId)),
    },
    marks,
  );
}

const slot = (taskId: string) => ({ taskId, request: 1 });
const holders = (state: FlowKeyState): string[] => [...state.holders.keys()].sort();
const line = (state: FlowKeyState): string[] => [...state.staged, ...state.waiters].map((w) => w.taskId);

describe('flow key state', () => {
  it('counts each hand-over once, in whichever order two of them arrive', () => {
    // A's slot went to C, whose call ended and handed it to D; the limiter hears of C → D first.
    for (const order of [
      ['a→c', 'c→d'],
      ['c→d', 'a→c'],
    ]) {
      const state = key(['a', 'b'], ['c', 'd']);
      for (const step of order) {
        const [from, to] = step.split('→') as [string, string];
        state.handOver({ from: slot(from), to: slot(to) });
      }
      assert.deepEqual(holders(state), ['b', 'd'], order.join(' then '));
      assert.deepEqual(line(state), []);
    }
  });

  it('counts every hand-over one signal carries, in order', () => {
    const state = key(['a', 'b'], ['c', 'd', 'e']);
    // B's slot went to D, then D's (its call over) to E; A's to C.
    state.handOverAll({
      from: slot('a'),
      to: slot('c'),
      also: [
        { from: slot('b'), to: slot('d') },
        { from: slot('d'), to: slot('e') },
      ],
    });
    assert.deepEqual(holders(state), ['c', 'e']);
    assert.deepEqual(line(state), []);
  });

  it('holds one slot for a task it granted that a worker handed a slot too', () => {
    const state = key(['a'], ['c']);
    assert.deepEqual(
      state.takeWhatFits().map((w) => w.taskId),
      ['c'],
    );
    state.handOver({ from: slot('a'), to: slot('c') });
    assert.deepEqual(holders(state), ['c']);
  });

  it('counts nothing for a hand-over to a task that withdrew its request since', () => {
    const state = key(['a'], ['c']);
    state.release(slot('c'));
    state.handOver({ from: slot('a'), to: slot('c') });
    assert.deepEqual(holders(state), []);
    assert.deepEqual(line(state), []);
  });

  it('hands the next run its line as it is, an emptied staged line included', () => {
    const state = key(['a', 'b'], ['c']);
    state.handOver({ from: slot('a'), to: slot('c') });
    const carried = state.carried();
    assert.deepEqual(carried.staged, []);
    assert.deepEqual(Object.keys(carried.holders).sort(), ['b', 'c']);
    // Spread over the input the run began with (as continue-as-new is), the emptied line wins.
    const next = new FlowKeyState({ ...{ key: 'k', holderCheckIntervalMs: 1, staged: [waiter('c')] }, ...carried }, marks);
    assert.deepEqual(line(next), []);
  });

  it('answers a repeated ask: again for a slot held, kept for a place in line, queued for a new request', () => {
    const state = key(['a'], [], 1);
    assert.equal(state.acquire(waiter('a')), 'again');
    assert.equal(state.acquire(waiter('b')), 'queued');
    assert.equal(state.acquire(waiter('b')), 'kept');
    assert.equal(state.acquire({ ...waiter('a'), request: 2 }), 'queued');
    assert.deepEqual(holders(state), []);
    assert.deepEqual(line(state), ['b', 'a']);
  });

  it('stages the head of a saturated line, and a better waiter takes the last staged place', () => {
    const state = key(['a'], [], 1);
    for (const id of ['w1', 'w2', 'w3', 'w4', 'w5', 'w6']) state.acquire(waiter(id));
    const staged = state.restage();
    assert.deepEqual(
      staged.map((n) => [n.taskId, n.staged]),
      ['w1', 'w2', 'w3', 'w4', 'w5'].map((id) => [id, true]),
    );
    state.acquire(waiter('urgent', 1));
    assert.deepEqual(
      state.restage().map((n) => [n.taskId, n.staged]),
      [
        ['w5', false],
        ['urgent', true],
      ],
    );
    assert.deepEqual(line(state), ['urgent', 'w1', 'w2', 'w3', 'w4', 'w5', 'w6']);
  });
});
