/**
 * A worker's relay of staged attempts on its own (activities/slot-relay.ts): the order it hands
 * slots in, the better staged task it waits for, a wake that comes before its attempt parks, and
 * an unstage it delivered before its task heard of it.
 * The relay at work between real attempts is tested in flow-control-staged.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SlotRelay, type ParkEnd, type ParkedAttempt } from '../activities/slot-relay.js';

/** Every task's first park of its first attempt has this activity id. */
const FIRST_PARK = 'callCallbackStaged-after-0-park-1';

const attempt = (taskId: string, priority = 3, createdAt = '2026-12-04T10:00:00.000Z'): ParkedAttempt => ({
  taskId,
  request: 1,
  priority,
  createdAt,
});

/** How a park has ended so far (undefined: still parked). */
function watch(parked: Promise<ParkEnd>): () => ParkEnd | undefined {
  let ended: ParkEnd | undefined;
  void parked.then((how) => {
    ended = how;
  });
  return () => ended;
}

const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('slot relay', () => {
  it('hands slots by priority, then creation, then arrival, and only within the key', async () => {
    const relay = new SlotRelay();
    const late = watch(relay.park('k', attempt('late', 3, '2026-12-04T10:00:05.000Z'), FIRST_PARK));
    const early = watch(relay.park('k', attempt('early', 3, '2026-12-04T10:00:01.000Z'), FIRST_PARK));
    const urgent = watch(relay.park('k', attempt('urgent', 1, '2026-12-04T10:00:09.000Z'), FIRST_PARK));
    const other = watch(relay.park('other', attempt('other', 1), FIRST_PARK));
    assert.deepEqual(
      [relay.handOver('k'), relay.handOver('k'), relay.handOver('k')].map((a) => a?.taskId),
      ['urgent', 'early', 'late'],
    );
    assert.equal(relay.handOver('k'), undefined);
    await settled();
    assert.deepEqual([urgent(), early(), late(), other()], [{ kind: 'go' }, { kind: 'go' }, { kind: 'go' }, undefined]);
    assert.equal(relay.size, 1);
  });

  it('hands no slot past a better staged task it was told of that has not parked yet', () => {
    const relay = new SlotRelay();
    void relay.park('k', attempt('worse', 5), FIRST_PARK);
    relay.expect('k', attempt('better', 1));
    assert.equal(relay.handOver('k'), undefined);
    void relay.park('k', attempt('better', 1), FIRST_PARK);
    assert.equal(relay.handOver('k')?.taskId, 'better');
    assert.equal(relay.handOver('k')?.taskId, 'worse');
  });

  it('keeps a slot for a better staged task expected here until it parks, and gives it back when none does', async () => {
    const relay = new SlotRelay();
    const worse = watch(relay.park('k', attempt('worse', 5), FIRST_PARK));
    relay.expect('k', attempt('better', 1));
    const held = relay.handOverSoon('k');
    void relay.park('k', attempt('better', 1), FIRST_PARK);
    assert.equal((await held)?.taskId, 'better');
    await settled();
    assert.equal(worse(), undefined);
    // Nobody expected: the worse one parked here is handed the next slot at once.
    assert.equal((await relay.handOverSoon('k'))?.taskId, 'worse');
    // Expected, never parked here (it parked in another worker): the slot goes back to the limiter.
    relay.expect('k', attempt('elsewhere', 1));
    assert.equal(await relay.handOverSoon('k'), undefined);
  });

  it('keeps a wake that came before its attempt parked for that attempt of that task only', async () => {
    const relay = new SlotRelay();
    // Activity ids repeat across tasks: the first park of every task's first attempt has the same one.
    const activityId = 'callCallbackStaged-after-0-park-1';
    relay.wakeEarly('woken', activityId, { kind: 'go' });
    const other = watch(relay.park('k', attempt('other'), activityId));
    const woken = watch(relay.park('k', attempt('woken'), activityId));
    await settled();
    assert.equal(other(), undefined, "another task's park is not woken");
    assert.deepEqual(woken(), { kind: 'go' });
    assert.equal(relay.size, 1);
    // Used once: the same task's next park waits for its own word.
    const again = watch(relay.park('k', attempt('woken'), 'callCallbackStaged-after-0-park-2'));
    await settled();
    assert.equal(again(), undefined);
  });

  it('stands down a park on a notice older than an unstage it delivered, parked then or after, and no newer one', async () => {
    const relay = new SlotRelay();
    const parked = watch(relay.park('k', { ...attempt('t'), seq: 1 }, FIRST_PARK));
    assert.equal(relay.unstage('t', 2), true);
    await settled();
    assert.deepEqual(parked(), { kind: 'stoodDown', reason: 'unstaged', seq: 2 });
    // Its task had not heard yet and parked again on the notice it had: it stands down at once.
    const again = watch(relay.park('k', { ...attempt('t'), seq: 1 }, 'callCallbackStaged-after-0-park-2'));
    await settled();
    assert.deepEqual(again(), { kind: 'stoodDown', reason: 'unstaged', seq: 2 });
    assert.equal(relay.handOver('k'), undefined, 'no slot goes to a task the key no longer stages');
    // Staged again since: that park waits, a late repeat of the old unstage leaves it, and it is handed the next slot.
    const restaged = watch(relay.park('k', { ...attempt('t'), seq: 3 }, 'callCallbackStaged-after-0-park-3'));
    assert.equal(relay.unstage('t', 2), false);
    await settled();
    assert.equal(restaged(), undefined);
    assert.equal(relay.handOver('k')?.taskId, 't');
    await settled();
    assert.deepEqual(restaged(), { kind: 'go' });
  });

  it('turns a park away at once when as many as it may are parked, and takes one again when there is room', async () => {
    const relay = new SlotRelay(1);
    const first = watch(relay.park('k', attempt('first'), FIRST_PARK));
    const second = watch(relay.park('k', attempt('second'), FIRST_PARK));
    await settled();
    assert.equal(first(), undefined);
    assert.deepEqual(second(), { kind: 'stoodDown', reason: 'no room' });
    assert.equal(relay.handOver('k')?.taskId, 'first');
    const third = watch(relay.park('k', attempt('third'), FIRST_PARK));
    await settled();
    assert.equal(third(), undefined);
    assert.equal(relay.size, 1);
  });

  it('stands every park down when its worker stops, those that arrive after included', async () => {
    const relay = new SlotRelay();
    const parked = watch(relay.park('k', attempt('parked'), FIRST_PARK));
    assert.equal(relay.standDownAll('worker shutdown'), 1);
    const late = watch(relay.park('k', attempt('late'), FIRST_PARK));
    await settled();
    assert.deepEqual(parked(), { kind: 'stoodDown', reason: 'worker shutdown' });
    assert.deepEqual(late(), { kind: 'stoodDown', reason: 'worker shutdown' });
    assert.equal(relay.size, 0);
  });

  it('knows an attempt runs from its start to its end, parked or calling', () => {
    const relay = new SlotRelay();
    relay.enter('t');
    relay.enter('t');
    relay.leave('t');
    assert.equal(relay.isRunning('t'), true);
    relay.leave('t');
    assert.equal(relay.isRunning('t'), false);
  });
});
