/**
 * The API's batching of first-slot asks per key (src/api/flow-control/first-slot-asks.ts), on its
 * own: what goes into which update, and what a create gets when the wait runs out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FirstSlotAsks, MAX_ASKS_PER_UPDATE, type SendAsks } from '../src/api/flow-control/first-slot-asks.js';
import type { FirstSlotAnswer, FirstSlotRequest, FlowLimits } from '../workflows/flow-control-contract.js';

const limits: FlowLimits = { parallelism: 1, rate: null, period: 1 };
const ask = (taskId: string): FirstSlotRequest => ({
  acquire: { taskId, request: 1, priority: 3, createdAt: '2026-12-02T00:00:00.000Z' },
});

/** A send whose updates stay in flight until `answer` is called. */
function heldSends(): {
  send: SendAsks;
  sent: Array<{ key: string; taskIds: string[] }>;
  answer: (answers?: FirstSlotAnswer[]) => void;
} {
  const sent: Array<{ key: string; taskIds: string[] }> = [];
  const pending: Array<(answers: FirstSlotAnswer[] | undefined) => void> = [];
  return {
    sent,
    send: (key, asks) =>
      new Promise((resolve) => {
        sent.push({ key, taskIds: asks.map((a) => a.acquire.taskId) });
        pending.push(resolve);
      }),
    answer: (answers) => pending.shift()!(answers),
  };
}

const granted = (n: number): FirstSlotAnswer[] => Array.from({ length: n }, () => ({ granted: true, reportStart: false }));

describe('first-slot asks', () => {
  it('sends one update per key at a time: asks that arrive meanwhile go together in the next, in arrival order', async () => {
    const sends = heldSends();
    const asks = new FirstSlotAsks(sends.send, 60_000);
    const first = asks.ask('k', ask('a'), limits);
    const rest = ['b', 'c', 'd'].map((id) => asks.ask('k', ask(id), limits));
    const other = asks.ask('other', ask('x'), limits);
    assert.deepEqual(sends.sent, [
      { key: 'k', taskIds: ['a'] },
      { key: 'other', taskIds: ['x'] },
    ]);
    sends.answer(granted(1));
    assert.deepEqual(await first, { granted: true, reportStart: false });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sends.sent[2], { key: 'k', taskIds: ['b', 'c', 'd'] });
    sends.answer(granted(1));
    sends.answer([
      { granted: true, reportStart: false },
      { granted: false, reportStart: false },
      { granted: false, reportStart: false },
    ]);
    assert.deepEqual(
      (await Promise.all(rest)).map((a) => a?.granted),
      [true, false, false],
    );
    assert.equal((await other)?.granted, true);
  });

  it('caps an update at MAX_ASKS_PER_UPDATE asks', async () => {
    const sends = heldSends();
    const asks = new FirstSlotAsks(sends.send, 60_000);
    const all = Array.from({ length: MAX_ASKS_PER_UPDATE + 2 }, (_, i) => asks.ask('k', ask(`t${i}`), limits));
    sends.answer(granted(1));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(sends.sent[1]!.taskIds.length, MAX_ASKS_PER_UPDATE);
    sends.answer(granted(MAX_ASKS_PER_UPDATE));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sends.sent[2]!.taskIds, [`t${MAX_ASKS_PER_UPDATE + 1}`]);
    sends.answer(granted(1));
    assert.equal((await Promise.all(all)).length, MAX_ASKS_PER_UPDATE + 2);
  });

  it('answers nothing to an ask whose wait ran out while it was queued, and never sends it', async () => {
    const sends = heldSends();
    const asks = new FirstSlotAsks(sends.send, 20);
    const first = asks.ask('k', ask('a'), limits);
    const late = asks.ask('k', ask('b'), limits);
    await new Promise((resolve) => setTimeout(resolve, 40));
    sends.answer(granted(1));
    assert.equal((await first)?.granted, true);
    assert.equal(await late, undefined);
    assert.equal(sends.sent.length, 1);
    // The key is free again: the next ask is sent at once.
    const next = asks.ask('k', ask('c'), limits);
    assert.deepEqual(sends.sent[1], { key: 'k', taskIds: ['c'] });
    sends.answer(granted(1));
    assert.equal((await next)?.granted, true);
  });

  it('fails every create of an update that failed (Temporal unreachable), and sends the next', async () => {
    let calls = 0;
    const asks = new FirstSlotAsks(async () => {
      calls++;
      if (calls === 1) throw new Error('unreachable');
      return granted(1);
    }, 60_000);
    await assert.rejects(asks.ask('k', ask('a'), limits), /unreachable/);
    assert.equal((await asks.ask('k', ask('b'), limits))?.granted, true);
  });
});
