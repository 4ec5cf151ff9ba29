/**
 * The task memo as stored (workflows/task-memo.ts): written without what its reader derives,
 * read back whole, so every view (create's answer, GET, the list, a bulk operation's judgement)
 * is what it was when the memo carried every field; memos from before read as they are.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_PRIORITY } from '../workflows/flow-control-contract.js';
import { TASK_MEMO_KEY, workflowIdForTask, type TaskInput, type TaskMemo } from '../workflows/task-contract.js';
import { memoFromStored, storedMemo } from '../workflows/task-memo.js';
import { initialMemo } from '../workflows/task-start.js';
import { Receiver, respondJson } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

const CREATED = '2026-12-05T07:00:00.000Z';
const input = (overrides: Partial<TaskInput> = {}): TaskInput =>
  ({
    id: 'tsk_memo',
    callbackUrl: 'https://app.example/run',
    webhookUrl: 'https://app.example/hook',
    payload: {},
    retries: 3,
    timeoutSeconds: 30,
    delaySeconds: 0,
    createdAt: CREATED,
    policy: {},
    ...overrides,
  }) as TaskInput;

const roundTrip = (memo: TaskMemo): TaskMemo => memoFromStored(storedMemo(memo), `task-${memo.id}`, CREATED);

describe('the stored task memo', () => {
  it('reads back whole, for a task as it starts and as it ends', () => {
    const started = initialMemo(input());
    const stored = storedMemo(started);
    for (const field of ['id', 'updatedAt', 'attempts', 'delay', 'priority', 'webhook']) {
      assert.ok(!(field in stored), `${field} is stored`);
    }
    assert.deepEqual(memoFromStored(stored, 'task-tsk_memo', '2026-12-05T07:00:00.123Z'), started);

    const variants: TaskMemo[] = [
      initialMemo(input({ webhookUrl: null })),
      initialMemo(input({ delaySeconds: 60, priority: 5, labels: ['a', 'b'], method: 'PUT' })),
      initialMemo(input({ flowControl: { key: 'k', limits: {}, firstSlotRefused: true } } as Partial<TaskInput>)),
      {
        ...started,
        status: 'succeeded',
        attempts: 2,
        updatedAt: '2026-12-05T07:00:03.000Z',
        webhook: { status: 'delivered', attempts: 1, statusCode: 200, deliveredAt: '2026-12-05T07:00:03.100Z' },
        progress: { percent: 50, updatedAt: '2026-12-05T07:00:01.000Z' },
      },
      { ...started, status: 'failed', attempts: 4, error: { code: 'http_error', message: 'HTTP 500' } },
      // A webhook tried and failed with no attempt counted is not the untried one.
      { ...started, status: 'failed', webhook: { status: 'pending', attempts: 0, error: 'x' } },
    ];
    for (const memo of variants) assert.deepEqual(roundTrip(memo), memo);
  });

  it('is well under the whole memo for a plain task', () => {
    const started = initialMemo(input());
    const whole = JSON.stringify(started).length;
    const stored = JSON.stringify(storedMemo(started)).length;
    assert.ok(stored < 0.7 * whole, `${stored} bytes stored for a ${whole}-byte memo`);
  });

  it('reads a memo from before as it is, and a schedule’s template as its run', () => {
    const before: TaskMemo = { ...initialMemo(input()), priority: 2 };
    assert.equal(memoFromStored(before, 'task-tsk_memo', undefined), before);
    // Without a priority (tasks from before priorities): none is made up.
    const { priority: _priority, ...older } = before;
    assert.deepEqual(memoFromStored(older, 'task-tsk_memo', undefined), older);

    const template = initialMemo(input({ id: '', createdAt: '' }));
    const run = memoFromStored(template, 'task-aqs-nightly-2026-12-05T07:00:00Z', '2026-12-05T07:00:00.010Z');
    assert.equal(run.id, 'aqs-nightly-2026-12-05T07:00:00Z');
    assert.equal(run.createdAt, '2026-12-05T07:00:00.010Z');
    assert.equal(run.updatedAt, run.createdAt);
  });
});

describe('tasks with stored memos', () => {
  let harness: Harness;
  let receiver: Receiver;

  before(async () => {
    harness = await startHarness({ withoutWorker: true });
    receiver = await Receiver.start();
  });

  after(async () => {
    await harness.close();
    await receiver.close();
    await stopOwnServer();
  });

  const rawMemo = async (id: string) => (await harness.client.workflow.getHandle(workflowIdForTask(id)).describe()).memo ?? {};
  /** The task's view in the list, once visibility has it with `status`. */
  const listed = (label: string, id: string, status: string) =>
    eventually(
      async () => {
        const page = await harness.api('GET', `/v1/tasks?label=${encodeURIComponent(label)}&limit=10`);
        assert.equal(page.status, 200);
        const found = (page.body.tasks as Array<Record<string, unknown>>).find((task) => task.id === id);
        return found?.status === status ? found : undefined;
      },
      { what: `task ${id} listed as ${status}` },
    );

  it('show every field, in GET and the list, before the task runs and once it has ended', async () => {
    const label = `memo-${randomUUID().slice(0, 8)}`;
    receiver.always('/memo-run', respondJson(200, { done: true }));
    receiver.always('/memo-hook', respondJson(200, {}));
    const body = { callbackUrl: receiver.url('/memo-run'), webhookUrl: receiver.url('/memo-hook'), payload: {}, labels: [label] };
    const create = await harness.api('POST', '/v1/tasks', body);
    assert.equal(create.status, 202);
    const id = create.body.id as string;
    const createdAt = create.body.createdAt as string;

    // No worker yet: GET and the list read the memo the API stored, which holds no request hash
    // (no idempotency key) and none of the fields it derives.
    const stored = await rawMemo(id);
    assert.equal((stored[TASK_MEMO_KEY] as { v?: number }).v, 2);
    assert.ok(!('id' in (stored[TASK_MEMO_KEY] as object)), 'the id is stored');
    assert.ok(!('request' in stored), 'a request hash is stored for a task without an idempotency key');
    const expected = {
      id,
      status: 'pending',
      createdAt,
      updatedAt: createdAt,
      attempts: 0,
      delay: 0,
      priority: DEFAULT_PRIORITY,
      labels: [label],
      webhook: { status: 'pending', attempts: 0 },
    };
    const waiting = await harness.task(id);
    assert.deepEqual(waiting, { ...waiting, ...expected });
    const waitingInList = await listed(label, id, 'pending');
    assert.deepEqual(waitingInList, { ...waitingInList, ...expected });

    await harness.startWorker();
    const ended = await harness.waitForEnd(id);
    assert.equal(ended.status, 'succeeded');
    // The list reads the end's memo (GET reads the workflow's result).
    const endedInList = await listed(label, id, 'succeeded');
    assert.deepEqual(
      { ...endedInList, webhook: { status: (endedInList.webhook as { status: string }).status } },
      {
        ...endedInList,
        id,
        createdAt,
        updatedAt: ended.updatedAt,
        endedAt: ended.updatedAt,
        attempts: 1,
        delay: 0,
        priority: DEFAULT_PRIORITY,
        webhook: { status: 'delivered' },
      },
    );
    // The end's memo, written by the workflow, is stored the same way.
    const endMemo = (await rawMemo(id))[TASK_MEMO_KEY] as Record<string, unknown>;
    assert.equal(endMemo.v, 2);
    assert.ok(!('id' in endMemo) && !('priority' in endMemo), 'the end memo stores what it derives');
  });

  it('keeps the request hash of a task created with an idempotency key: a retry is told from a misuse', async () => {
    receiver.always('/memo-keyed', respondJson(200, {}));
    const body = { callbackUrl: receiver.url('/memo-keyed'), payload: {} };
    const key = { 'idempotency-key': `memo-${randomUUID()}` };
    const first = await harness.api('POST', '/v1/tasks', body, key);
    assert.equal(first.status, 202);
    assert.ok('request' in (await rawMemo(first.body.id as string)));
    const retry = await harness.api('POST', '/v1/tasks', body, key);
    assert.equal(retry.body.id, first.body.id);
    const misuse = await harness.api('POST', '/v1/tasks', { ...body, payload: { other: true } }, key);
    assert.equal(misuse.status, 409);
  });
});
