/**
 * Schedules on Temporal Schedules, against the real server: runs are ordinary tasks with
 * `scheduleId` and listed by it; pause, resume, trigger and delete; overlap skip vs allow; bad
 * input; schedules of other programs are not ours. Proofs use the schedule's own state and info
 * (actions taken, skipped, running), never sleeps.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SCHEDULE_ID_PREFIX } from '../workflows/task-contract.js';
import { AsyncQueue, AsyncQueueApiError } from '../src/client/index.js';
import { ExitCode, runCli } from '../src/cli/main.js';
import { Receiver, respondJson, type Responder } from './support/receiver.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';
import { terminateRunning } from './support/cleanup.js';
import { eventually } from './support/eventually.js';
import { tamperedCursor } from './support/cursors.js';

let harness: Harness;
let receiver: Receiver;
const created: string[] = [];

before(async () => {
  harness = await startHarness();
  receiver = await Receiver.start();
});

after(async () => {
  for (const id of created)
    await harness.client.schedule
      .getHandle(id)
      .delete()
      .catch(() => undefined);
  await terminateRunning(harness);
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

const uniqueId = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;

async function createSchedule(body: Record<string, unknown>): Promise<any> {
  const response = await harness.api('POST', '/v1/schedules', body);
  assert.equal(response.status, 201, JSON.stringify(response.body));
  created.push(`${SCHEDULE_ID_PREFIX}${response.body.id}`);
  return response.body;
}

const info = async (id: string) => (await harness.client.schedule.getHandle(`${SCHEDULE_ID_PREFIX}${id}`).describe()).info;

/** A callee that holds every call until the test ends. */
const holding: Responder = async (_received, response) => {
  await new Promise<void>((resolve) => response.once('close', resolve));
};

describe('schedules', () => {
  it('every: 1 starts runs, each an ordinary task with scheduleId, listed by it, on a Temporal Schedule', async () => {
    receiver.always('/tick', respondJson(200, { tick: true }));
    const id = uniqueId('ticks');
    const view = await createSchedule({ id, every: 1, task: { callbackUrl: receiver.url('/tick'), payload: { n: 1 } } });
    assert.equal(view.id, id);
    assert.equal(view.every, 1);
    assert.equal(view.cron, undefined);
    assert.equal(view.timezone, 'UTC');
    assert.equal(view.paused, false);
    assert.equal(view.overlap, 'skip');
    assert.equal(view.task.callbackUrl, receiver.url('/tick'));
    assert.deepEqual(view.task.payload, { n: 1 });
    assert.ok(view.nextRunAt !== null && !Number.isNaN(Date.parse(view.nextRunAt)));

    const withRuns = await eventually(
      async () => {
        const current = (await harness.api('GET', `/v1/schedules/${id}`)).body;
        return current.recentTaskIds.length >= 2 ? current : undefined;
      },
      { timeoutMs: 30_000, what: 'two runs' },
    );
    for (const taskId of withRuns.recentTaskIds.slice(0, 2) as string[]) {
      assert.ok(taskId.startsWith(`${SCHEDULE_ID_PREFIX}${id}-`), taskId);
      const task = await harness.waitForEnd(taskId);
      assert.equal(task.id, taskId);
      assert.equal(task.scheduleId, id);
      assert.equal(task.status, 'succeeded');
      assert.deepEqual(task.result, { tick: true });
      assert.ok(!Number.isNaN(Date.parse(task.createdAt)));
    }
    await eventually(
      async () => {
        const listed = (await harness.api('GET', `/v1/tasks?scheduleId=${id}&limit=100`)).body.tasks as any[];
        const ids = new Set(listed.map((task) => task.id));
        const ok = (withRuns.recentTaskIds.slice(0, 2) as string[]).every((taskId) => ids.has(taskId));
        return ok && listed.every((task) => task.scheduleId === id) ? true : undefined;
      },
      { what: 'the runs listed by scheduleId' },
    );
    // Another schedule's runs are not listed under this one.
    assert.equal((await harness.api('GET', `/v1/tasks?scheduleId=${uniqueId('none')}`)).body.tasks.length, 0);
    assert.equal((await harness.api('GET', '/v1/schedules')).body.schedules.filter((s: any) => s.id === id).length, 1);
    await harness.api('POST', `/v1/schedules/${id}/pause`); // no more load for the other tests
  });

  it('pause stops runs, trigger starts one, resume restarts them, delete removes the schedule but not its tasks', async () => {
    receiver.always('/paused', respondJson(200, { ok: true }));
    receiver.always('/clock', respondJson(200, { ok: true }));
    const id = uniqueId('pausable');
    await createSchedule({ id, every: 1, task: { callbackUrl: receiver.url('/paused') } });
    await eventually(async () => ((await info(id)).numActionsTaken >= 1 ? true : undefined), { what: 'a first run' });
    const paused = await harness.api('POST', `/v1/schedules/${id}/pause`);
    assert.equal(paused.status, 200);
    assert.equal(paused.body.paused, true);
    assert.equal(paused.body.nextRunAt, null);
    const taken = (await info(id)).numActionsTaken;
    // A clock that is not a sleep: another every-1 schedule takes three actions meanwhile.
    const clock = uniqueId('clock');
    await createSchedule({ id: clock, every: 1, task: { callbackUrl: receiver.url('/clock') } });
    await eventually(async () => ((await info(clock)).numActionsTaken >= 3 ? true : undefined), {
      timeoutMs: 30_000,
      what: 'three ticks of the clock schedule',
    });
    assert.equal((await info(id)).numActionsTaken, taken, 'no run while paused');
    await harness.api('DELETE', `/v1/schedules/${clock}`);

    const triggered = await harness.api('POST', `/v1/schedules/${id}/trigger`);
    assert.equal(triggered.status, 202);
    await eventually(async () => ((await info(id)).numActionsTaken === taken + 1 ? true : undefined), {
      what: 'the triggered run',
    });
    const resumed = await harness.api('POST', `/v1/schedules/${id}/resume`);
    assert.equal(resumed.status, 200);
    assert.equal(resumed.body.paused, false);
    assert.ok(resumed.body.nextRunAt !== null);
    await eventually(async () => ((await info(id)).numActionsTaken >= taken + 2 ? true : undefined), {
      what: 'runs after resume',
    });

    const lastTask = (await harness.api('GET', `/v1/schedules/${id}`)).body.recentTaskIds.at(-1) as string;
    const deleted = await harness.api('DELETE', `/v1/schedules/${id}`);
    assert.equal(deleted.status, 204);
    assert.equal((await harness.api('GET', `/v1/schedules/${id}`)).status, 404);
    assert.equal((await harness.api('POST', `/v1/schedules/${id}/pause`)).status, 404);
    assert.equal((await harness.waitForEnd(lastTask)).scheduleId, id, 'a started task goes on');
  });

  it("starts each run with a task's memo and search attributes: found by flow-control key, label and status while it waits", async () => {
    const key = uniqueId('scheduled-key');
    assert.equal((await harness.api('PUT', `/v1/flow-control/${key}`, { parallelism: 1 })).status, 200);
    assert.equal((await harness.api('POST', `/v1/flow-control/${key}/pause`)).status, 200);
    const id = uniqueId('keyed');
    await createSchedule({
      id,
      every: 3600,
      task: { callbackUrl: receiver.url('/keyed-run'), labels: ['nightly'], flowControl: { key, parallelism: 1 } },
    });
    assert.equal((await harness.api('POST', `/v1/schedules/${id}/trigger`)).status, 202);
    const taskId = await eventually(async () => {
      const ids = (await harness.api('GET', `/v1/schedules/${id}`)).body.recentTaskIds as string[];
      return ids[0];
    });
    const waiting = await harness.task(taskId);
    assert.equal(waiting.status, 'pending');
    // The list's filters find the run as they find a task created through POST /v1/tasks, and so
    // does a bulk filter's flowControlKey (the FlowControlKey search attribute).
    await eventually(
      async () => {
        const listed = await harness.api('GET', `/v1/tasks?status=pending&label=nightly&scheduleId=${id}`);
        assert.equal(listed.status, 200, JSON.stringify(listed.body));
        return (listed.body.tasks as Array<{ id: string }>).some((task) => task.id === taskId) ? true : undefined;
      },
      { what: 'the waiting run in the filtered list' },
    );
    const byKey = await harness.client.workflow.count(`FlowControlKey = '${key}' AND WorkflowId = 'task-${taskId}'`);
    assert.equal(byKey.count, 1, 'the run carries its flow-control key');
    assert.equal(receiver.to('/keyed-run').length, 0, 'the paused key held the run');
  });

  it('overlap skip skips runs while the previous task runs; allow lets them overlap', async () => {
    receiver.always('/slow-skip', holding);
    receiver.always('/slow-allow', holding);
    const skip = uniqueId('skip');
    const allow = uniqueId('allow');
    await createSchedule({
      id: skip,
      every: 1,
      overlap: 'skip',
      task: { callbackUrl: receiver.url('/slow-skip'), timeout: 300 },
    });
    const allowView = await createSchedule({
      id: allow,
      every: 1,
      overlap: 'allow',
      task: { callbackUrl: receiver.url('/slow-allow'), timeout: 300 },
    });
    assert.equal(allowView.overlap, 'allow');
    // Temporal tracks running actions only where the overlap policy needs them: the tasks say it.
    const overlapping = await eventually(
      async () => {
        const ids = (await harness.api('GET', `/v1/schedules/${allow}`)).body.recentTaskIds as string[];
        return ids.length >= 3 ? ids : undefined;
      },
      { timeoutMs: 30_000, what: 'three runs of the allow schedule' },
    );
    for (const taskId of overlapping.slice(0, 3)) {
      assert.ok(!['succeeded', 'failed', 'cancelled'].includes((await harness.task(taskId)).status), 'runs overlap');
    }
    await eventually(async () => ((await info(skip)).numActionsSkippedOverlap >= 2 ? true : undefined), {
      timeoutMs: 30_000,
      what: 'skipped runs of the skip schedule',
    });
    const skipInfo = await info(skip);
    assert.equal(skipInfo.numActionsTaken, 1);
    assert.equal(skipInfo.runningActions.length, 1);
    for (const id of [skip, allow]) await harness.api('POST', `/v1/schedules/${id}/pause`);
  });

  it('takes cron with a time zone, and refuses bad input with a 400 naming the field', async () => {
    const id = uniqueId('cron');
    const view = await createSchedule({
      id,
      cron: '0 3 * * MON-FRI',
      timezone: 'Europe/Paris',
      paused: true,
      task: { callbackUrl: receiver.url('/never') },
    });
    assert.equal(view.cron, '0 3 * * MON-FRI');
    assert.equal(view.timezone, 'Europe/Paris');
    assert.equal(view.paused, true);
    const taken = await harness.api('POST', '/v1/schedules', { id, every: 5, task: { callbackUrl: receiver.url('/x') } });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.error.code, 'schedule_exists');

    const task = { callbackUrl: receiver.url('/x') };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ cron: '61 * * * *', task }, 'cron'],
      [{ cron: '* * * *', task }, 'cron'],
      [{ cron: '0 0 * * FUNDAY', task }, 'cron'],
      [{ cron: '5-1 * * * *', task }, 'cron'],
      [{ every: 5, timezone: 'Mars/Olympus', task }, 'timezone'],
      [{ cron: '* * * * *', every: 5, task }, 'every'],
      [{ task }, 'cron'],
      [{ every: 0, task }, 'every'],
      [{ every: 5, task: { ...task, timeout: 0 } }, 'task.timeout'],
      [{ every: 5, task: { ...task, delay: 5 } }, 'task.delay'],
      [{ every: 5, task: { callbackUrl: 'ftp://example.com/' } }, 'task.callbackUrl'],
      [{ every: 5, task: { ...task, headers: { host: 'x' } } }, 'task.headers'],
      [{ id: 'bad id!', every: 5, task }, 'id'],
      [{ id: 'x'.repeat(37), every: 5, task }, 'id'],
    ];
    for (const [body, field] of cases) {
      const response = await harness.api('POST', '/v1/schedules', body);
      assert.equal(response.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(response.body)}`);
      assert.ok(response.body.error.message.startsWith(`${field}`), `${JSON.stringify(body)}: ${response.body.error.message}`);
    }
    assert.equal((await harness.api('GET', '/v1/tasks?scheduleId=bad%20id')).status, 400);
  });

  it('ignores schedules of other programs in the namespace', async () => {
    const foreign = `foreign-${randomUUID().slice(0, 8)}`;
    const lookalike = `${SCHEDULE_ID_PREFIX}${foreign}`; // our prefix, but not ours (no AsyncQueue memo)
    for (const scheduleId of [foreign, lookalike]) {
      await harness.client.schedule.create({
        scheduleId,
        spec: { intervals: [{ every: '1h' }] },
        action: {
          type: 'startWorkflow',
          workflowType: 'otherWorkflow',
          taskQueue: 'other-queue',
          workflowId: `other-${scheduleId}`,
        },
        state: { paused: true },
      });
      created.push(scheduleId);
    }
    assert.equal((await harness.api('GET', `/v1/schedules/${foreign}`)).status, 404);
    assert.equal((await harness.api('POST', `/v1/schedules/${foreign}/trigger`)).status, 404);
    assert.equal((await harness.api('DELETE', `/v1/schedules/${foreign}`)).status, 404);
    const listed = (await harness.api('GET', '/v1/schedules')).body.schedules as any[];
    assert.ok(!listed.some((schedule) => schedule.id === foreign || schedule.id === lookalike));
    // Still there: we did not touch it.
    assert.equal((await harness.client.schedule.getHandle(lookalike).describe()).state.paused, true);
  });

  it('works through the SDK (aq.schedules.*) and the CLI (asyncqueue schedules …)', async () => {
    receiver.always('/sdk-run', respondJson(200, { sdk: true }));
    const aq = new AsyncQueue({ baseUrl: harness.baseUrl });
    const id = uniqueId('sdk');
    const schedule = await aq.schedules.create({
      id,
      every: 3600,
      paused: true,
      task: { callbackUrl: receiver.url('/sdk-run') },
    });
    created.push(`${SCHEDULE_ID_PREFIX}${id}`);
    assert.equal(schedule.paused, true);
    assert.equal((await aq.schedules.get(id)).every, 3600);
    assert.ok((await aq.schedules.list()).some((listed) => listed.id === id));
    assert.equal((await aq.schedules.resume(id)).paused, false);
    assert.equal((await aq.schedules.pause(id)).paused, true);
    await aq.schedules.trigger(id);
    const runs = await eventually(async () => {
      const ids = (await aq.schedules.get(id)).recentTaskIds;
      return ids.length === 1 ? ids : undefined;
    });
    const page = await eventually(async () => {
      const listed = await aq.tasks.list({ scheduleId: id });
      return listed.tasks.length === 1 ? listed : undefined;
    });
    assert.equal(page.tasks[0]!.id, runs[0]);
    assert.equal((await aq.tasks.wait(runs[0]!, { timeoutMs: 20_000 })).status, 'succeeded');
    await aq.schedules.delete(id);
    await assert.rejects(aq.schedules.get(id), (err: unknown) => err instanceof AsyncQueueApiError && err.status === 404);

    const lines: string[] = [];
    const out = { write: (text: string) => void lines.push(text), error: (text: string) => void lines.push(text) };
    const env = { ASYNCQUEUE_URL: harness.baseUrl };
    const cliId = uniqueId('cli');
    const args = ['schedules', 'create', '--id', cliId, '--cron', '*/5 * * * *', '--timezone', 'Asia/Tokyo'];
    const code = await runCli([...args, '--paused', '--callback-url', receiver.url('/cli'), '--json'], env, out);
    created.push(`${SCHEDULE_ID_PREFIX}${cliId}`);
    assert.equal(code, ExitCode.Ok, lines.join('\n'));
    assert.equal(JSON.parse(lines.at(-1)!).timezone, 'Asia/Tokyo');
    // The schedules list is visibility's, which lists a new schedule a moment after its create;
    // and it prints one line per schedule, this one among others.
    await eventually(
      async () => {
        const listed: string[] = [];
        const listOut = { write: (text: string) => void listed.push(text), error: (text: string) => void listed.push(text) };
        assert.equal(await runCli(['schedules', 'list'], env, listOut), ExitCode.Ok, listed.join('\n'));
        return listed.some((line) => line.includes(cliId)) ? true : undefined;
      },
      { timeoutMs: 20_000, what: 'the CLI to list the new schedule' },
    );
    assert.equal(await runCli(['schedules', 'delete', cliId], env, out), ExitCode.Ok);
    assert.equal(await runCli(['schedules', 'get', cliId], env, out), ExitCode.Failed);
    assert.equal(await runCli(['schedules', 'create', '--every', '5'], env, out), ExitCode.Usage);
  });

  it('pages the list: every schedule once across pages of `limit`, a cursor it did not issue refused with a 400 naming it', async () => {
    const aq = new AsyncQueue({ baseUrl: harness.baseUrl });
    const mine = [uniqueId('page-a'), uniqueId('page-b'), uniqueId('page-c')];
    for (const id of mine) await createSchedule({ id, every: 3600, paused: true, task: { callbackUrl: receiver.url('/never') } });
    const seen = await eventually(
      async () => {
        const ids: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await aq.schedules.page({ limit: 2, ...(cursor !== undefined ? { cursor } : {}) });
          assert.ok(page.schedules.length <= 2, `a page of ${page.schedules.length}`);
          ids.push(...page.schedules.map((schedule) => schedule.id));
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined);
        return mine.every((id) => ids.includes(id)) ? ids : undefined;
      },
      { what: 'the three schedules across the pages' },
    );
    assert.equal(new Set(seen).size, seen.length, 'no schedule on two pages');
    const all = (await aq.schedules.list({ pageSize: 2 })).map((schedule) => schedule.id);
    for (const id of mine) assert.ok(all.includes(id));

    const first = await harness.api('GET', '/v1/schedules?limit=1');
    assert.equal(first.status, 200);
    assert.equal(typeof first.body.nextCursor, 'string');
    for (const [query, field] of [
      [`cursor=${tamperedCursor(first.body.nextCursor)}`, 'cursor'],
      ['limit=0', 'limit'],
    ] as const) {
      const response = await harness.api('GET', `/v1/schedules?${query}`);
      assert.equal(response.status, 400, query);
      assert.match(response.body.error.message, new RegExp(`^${field}`), query);
    }
  });

  it("accepts a run's task id everywhere a task id goes: task token, progress, async completion, ?wait", async () => {
    receiver.always('/accept-async', respondJson(202, { accepted: true }, { 'asyncqueue-completion': 'async' }));
    const id = uniqueId('async');
    await createSchedule({ id, every: 3600, paused: true, task: { callbackUrl: receiver.url('/accept-async'), timeout: 60 } });
    assert.equal((await harness.api('POST', `/v1/schedules/${id}/trigger`)).status, 202);
    const call = await eventually(async () =>
      receiver.to('/accept-async').find((request) => String(request.headers['asyncqueue-task-id']).startsWith(`aqs-${id}-`)),
    );
    const taskId = String(call.headers['asyncqueue-task-id']);
    assert.match(taskId, /^aqs-async-[0-9a-f]{8}-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    const token = { 'asyncqueue-task-token': String(call.headers['asyncqueue-task-token']) };
    const path = `/v1/tasks/${encodeURIComponent(taskId)}`;
    assert.equal((await harness.api('POST', `${path}/progress`, { percent: 50 }, token)).status, 202);
    const completed = await eventually(async () => {
      const response = await harness.api('POST', `${path}/complete`, { result: { done: 'async' } }, token);
      return response.status === 202 ? response : undefined;
    });
    assert.equal(completed.body.id, taskId);
    const ended = await harness.api('GET', `${path}?wait=20`);
    assert.equal(ended.body.status, 'succeeded');
    assert.deepEqual(ended.body.result, { done: 'async' });
    assert.equal(ended.body.scheduleId, id);
  });
});
