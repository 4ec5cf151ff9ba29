/**
 * The `202` rule and async completion across deploys. A plain `202` is a success like any 2xx;
 * `202` with `AsyncQueue-Completion: async` hands the attempt to the callee, and the wait for its
 * `/complete` or `/fail` is held by Temporal alone (an `awaitCompletion` activity completed
 * asynchronously at once), so restarting or killing every worker changes nothing for it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Receiver, respondJson, type Responder } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { runEntry, type Started } from '../src/dev/entry-points.js';
import { TaskTokenKeys } from '../activities/task-token.js';
import { TEST_SIGNING_SECRET, TEST_TASK_TOKEN_SECRET, startHarness, stopOwnServer, type Harness } from './support/harness.js';

let harness: Harness;
let receiver: Receiver;
const spawned: Started[] = [];

before(async () => {
  harness = await startHarness();
  receiver = await Receiver.start();
});

after(async () => {
  await Promise.all(spawned.map((child) => child.stop('SIGKILL')));
  await harness.close();
  await receiver.close();
  await stopOwnServer();
});

const acceptAsync = (body: unknown = {}): Responder => respondJson(202, body, { 'asyncqueue-completion': 'async' });

function asCallee(token: string) {
  return (path: string, body: unknown) => harness.api('POST', path, body, { 'asyncqueue-task-token': token });
}

interface HistoryEvent {
  eventType?: unknown;
  activityTaskScheduledEventAttributes?: {
    activityType?: { name?: string | null } | null;
    heartbeatTimeout?: { seconds?: unknown; nanos?: number | null } | null;
    retryPolicy?: { maximumAttempts?: number | null } | null;
  } | null;
}

async function history(id: string): Promise<HistoryEvent[]> {
  const fetched = await harness.client.workflow.getHandle(`task-${id}`).fetchHistory();
  return (fetched.events ?? []) as HistoryEvent[];
}

/** Activities of `name` the workflow scheduled, with their declared options. */
async function scheduled(id: string, name: string) {
  return (await history(id))
    .map((event) => event.activityTaskScheduledEventAttributes)
    .filter((attributes) => attributes?.activityType?.name === name);
}

/** Waits until the task's attempt awaits completion on the server (no worker involved). */
async function awaitingCompletion(id: string): Promise<void> {
  await eventually(
    async () => {
      const description = await harness.client.workflow.getHandle(`task-${id}`).describe();
      const pending = description.raw.pendingActivities ?? [];
      return pending.some((activity) => activity.activityType?.name === 'awaitCompletion' && activity.state === 2)
        ? true
        : undefined;
    },
    { what: `task ${id} to await completion` },
  );
}

describe('the 202 rule', () => {
  it('takes a plain 202 as success: its body is the result, and the callee is called once', async () => {
    receiver.always('/plain-202', respondJson(202, { queued: 'job-7' }));
    const id = await harness.createTask({ callbackUrl: receiver.url('/plain-202'), webhookUrl: receiver.url('/plain-202-hook') });
    const task = await harness.waitForEnd(id);
    assert.equal(task.status, 'succeeded');
    assert.deepEqual(task.result, { queued: 'job-7' });
    assert.equal(task.attempts, 1);
    assert.equal(receiver.to('/plain-202').length, 1);
    assert.equal((await scheduled(id, 'awaitCompletion')).length, 0);
    const [hook] = await receiver.waitFor('/plain-202-hook', 1);
    assert.equal(JSON.parse(hook!.body).type, 'task.succeeded');
  });

  it('starts async completion only for 202 with AsyncQueue-Completion: async, awaited with no heartbeat and no retry', async () => {
    receiver.always('/async-202', acceptAsync());
    const id = await harness.createTask({ callbackUrl: receiver.url('/async-202'), timeout: 60 });
    await awaitingCompletion(id);
    const [wait] = await scheduled(id, 'awaitCompletion');
    // Nothing is to keep it alive, so nothing can let it lapse: no heartbeat timeout, one attempt.
    assert.ok(wait !== undefined && wait !== null);
    assert.equal(Number(wait.heartbeatTimeout?.seconds ?? 0) + (wait.heartbeatTimeout?.nanos ?? 0), 0);
    assert.equal(wait.retryPolicy?.maximumAttempts, 1);
    assert.equal((await harness.task(id)).status, 'running');
    const [call] = receiver.to('/async-202');
    const done = await asCallee(String(call!.headers['asyncqueue-task-token']))(`/v1/tasks/${id}/complete`, {
      result: { ok: true },
    });
    assert.equal(done.status, 202);
    const task = await harness.waitForEnd(id);
    assert.deepEqual(task.result, { ok: true });
  });

  it('accepts /complete sent the moment the callee has answered, before the wait has begun', async () => {
    // The callee finishes its work at once and calls back while its 202 is still on the wire.
    const eager: Responder = (received, response) => {
      response.writeHead(202, { 'content-type': 'application/json', 'asyncqueue-completion': 'async' });
      response.end('{}');
      const id = String(received.headers['asyncqueue-task-id']);
      void asCallee(String(received.headers['asyncqueue-task-token']))(`/v1/tasks/${id}/complete`, { result: 'fast' }).then(
        (answer) => {
          eagerAnswers.push(answer.status);
        },
      );
    };
    const eagerAnswers: number[] = [];
    receiver.always('/eager', eager);
    const id = await harness.createTask({ callbackUrl: receiver.url('/eager') });
    const task = await harness.waitForEnd(id);
    assert.equal(task.status, 'succeeded');
    assert.equal(task.result, 'fast');
    await eventually(async () => (eagerAnswers.length > 0 ? true : undefined), { what: "the callee's /complete answered" });
    assert.deepEqual(eagerAnswers, [202]);
  });

  it('numbers the attempts after an async one on from it, and retries a retryable /fail after the backoff', async () => {
    const path = '/async-then-sync';
    receiver.script(path, acceptAsync(), respondJson(200, { attempt: 2 }));
    const id = await harness.createTask({ callbackUrl: receiver.url(path), retries: 1 });
    await awaitingCompletion(id);
    const [first] = receiver.to(path);
    const failed = await asCallee(String(first!.headers['asyncqueue-task-token']))(`/v1/tasks/${id}/fail`, {
      error: { message: 'try again' },
    });
    assert.equal(failed.status, 202);
    const task = await harness.waitForEnd(id);
    assert.equal(task.status, 'succeeded');
    assert.equal(task.attempts, 2);
    const calls = receiver.to(path);
    assert.deepEqual(
      calls.map((call) => call.headers['asyncqueue-attempt']),
      ['1', '2'],
    );
    const gap = calls[1]!.receivedAt - calls[0]!.receivedAt;
    assert.ok(gap >= harness.config.policy.retryInitialIntervalMs, `second attempt ${gap} ms after the first`);
  });

  it('holds many attempts awaiting completion at no cost to the worker or the server: no heartbeat at all', async () => {
    receiver.always('/many-async', acceptAsync());
    const ids = await Promise.all(
      Array.from({ length: 20 }, () => harness.createTask({ callbackUrl: receiver.url('/many-async'), timeout: 120 })),
    );
    await Promise.all(ids.map(awaitingCompletion));
    for (const id of ids) {
      const description = await harness.client.workflow.getHandle(`task-${id}`).describe();
      const wait = description.raw.pendingActivities?.find((activity) => activity.activityType?.name === 'awaitCompletion');
      assert.equal(wait?.lastHeartbeatTime ?? null, null, 'no heartbeat is ever recorded for an awaited attempt');
    }
    await Promise.all(ids.map(async (id) => harness.api('POST', `/v1/tasks/${id}/cancel`, {})));
    await Promise.all(ids.map(async (id) => harness.waitForEnd(id)));
  });
});

describe('a deploy while attempts await completion', () => {
  it('neither a graceful worker restart nor kill -9 calls the callee again; /complete afterwards succeeds', async () => {
    const local = await startHarness({ withoutWorker: true });
    try {
      receiver.always('/deploy', acceptAsync());
      const env = {
        TEMPORAL_ADDRESS: local.config.temporalAddress!,
        ASYNCQUEUE_TASK_QUEUE: local.config.taskQueue,
        ASYNCQUEUE_SIGNING_SECRET: TEST_SIGNING_SECRET,
        ASYNCQUEUE_TASK_TOKEN_SECRET: TEST_TASK_TOKEN_SECRET,
        ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'true',
        ASYNCQUEUE_HEARTBEAT_TIMEOUT: '1',
        ASYNCQUEUE_DATA_DIR: local.config.dataDir,
        LOG_LEVEL: 'warn',
      };
      const start = (): Started => {
        const worker = runEntry('worker-main', env);
        spawned.push(worker);
        return worker;
      };
      const waitRunning = async (id: string): Promise<void> => {
        await eventually(async () => ((await local.task(id)).status === 'running' ? true : undefined), { what: `${id} running` });
      };
      // Worker A takes the first call and leaves gracefully (SIGTERM: a deploy); worker B takes
      // the second and is killed (SIGKILL: a crash). Each held the attempt it had called.
      let worker = start();
      const graceful = await local.createTask({ callbackUrl: receiver.url('/deploy'), timeout: 120, retries: 3 });
      await receiver.waitFor('/deploy', 1);
      await waitRunning(graceful);
      assert.equal(await worker.stop('SIGTERM'), 0, worker.output());
      worker = start();
      const killed = await local.createTask({ callbackUrl: receiver.url('/deploy'), timeout: 120, retries: 3 });
      await receiver.waitFor('/deploy', 2);
      await waitRunning(killed);
      const crashedAt = Date.now();
      await worker.stop('SIGKILL');
      worker = start();
      // Past several heartbeat timeouts (1 s here), with a worker polling again: when a worker
      // process kept the wait alive, this is when Temporal called the callee a second time.
      await eventually(
        async () => {
          const queue = await local.client.workflowService.describeTaskQueue({
            namespace: local.config.temporalNamespace,
            taskQueue: { name: local.config.taskQueue },
            taskQueueType: 2,
          });
          return Date.now() - crashedAt > 4_000 && (queue.pollers ?? []).length > 0 ? true : undefined;
        },
        { what: 'a new worker polling, 4 s after the crash' },
      );

      for (const id of [graceful, killed]) {
        const calls = receiver.to('/deploy').filter((call) => call.headers['asyncqueue-task-id'] === id);
        assert.equal(calls.length, 1, `task ${id}: the callee was called ${calls.length} times`);
        // A callee retries a 503 (the crashed worker's workflow task is handed on after its timeout).
        const done = await eventually(
          async () => {
            const answer = await local.api(
              'POST',
              `/v1/tasks/${id}/complete`,
              { result: { id } },
              {
                'asyncqueue-task-token': String(calls[0]!.headers['asyncqueue-task-token']),
              },
            );
            if (answer.status === 503) assert.equal(answer.headers.get('retry-after'), '1');
            return answer.status === 503 ? undefined : answer;
          },
          { timeoutMs: 40_000, intervalMs: 1_000, what: `/complete of ${id}` },
        );
        assert.equal(done.status, 202, JSON.stringify(done.body));
        const task = await local.waitForEnd(id);
        assert.equal(task.status, 'succeeded');
        assert.deepEqual(task.result, { id });
        assert.equal(task.attempts, 1);
      }
      assert.equal(receiver.to('/deploy').length, 2);
      await worker.stop('SIGTERM');
    } finally {
      await local.close();
    }
  });
});

describe('a /complete that cannot be for an attempt', () => {
  it('answers 409 at once for a task not called yet (no worker has run it)', async () => {
    const idle = await startHarness({ withoutWorker: true });
    try {
      const id = await idle.createTask({ callbackUrl: receiver.url('/never') });
      const token = TaskTokenKeys.fromSecrets([TEST_TASK_TOKEN_SECRET])!.tokenFor(id);
      const startedAt = Date.now();
      const answer = await idle.api('POST', `/v1/tasks/${id}/complete`, { result: 1 }, { 'asyncqueue-task-token': token });
      assert.equal(answer.status, 409, JSON.stringify(answer.body));
      assert.equal(answer.body.error.code, 'not_awaiting_completion');
      assert.ok(Date.now() - startedAt < 2_000, 'answered without waiting for a wait to begin');
      await idle.client.workflow.getHandle(`task-${id}`).terminate('test over');
    } finally {
      await idle.close();
    }
  });
});

describe('the SDK and async completion', () => {
  it('retries /complete answered 503 completion_not_ready, and only that 503', async () => {
    const { AsyncQueue, AsyncQueueApiError } = await import('../src/client/index.js');
    const answers = [
      { status: 503, code: 'completion_not_ready' },
      { status: 200, code: '' },
    ];
    const seen: string[] = [];
    const fakeFetch = (async (url: string) => {
      seen.push(url);
      const next = answers.shift() ?? { status: 503, code: 'temporal_unavailable' };
      const body = next.status === 200 ? { id: 't', status: 'succeeded' } : { error: { code: next.code, message: 'x' } };
      return new Response(JSON.stringify(body), {
        status: next.status,
        headers: { 'content-type': 'application/json', 'retry-after': '0' },
      });
    }) as typeof fetch;
    const aq = new AsyncQueue({ baseUrl: 'http://127.0.0.1:1', fetch: fakeFetch });
    assert.equal((await aq.tasks.complete('t', 1, { taskToken: 'aqt1_x' })).status, 'succeeded');
    assert.equal(seen.length, 2);
    // A 503 that may have changed something (the deadline ran out mid-call) is not repeated.
    await assert.rejects(
      aq.tasks.complete('t', 1, { taskToken: 'aqt1_x' }),
      (err: unknown) => err instanceof AsyncQueueApiError && err.code === 'temporal_unavailable',
    );
    assert.equal(seen.length, 3);
  });
});
