/**
 * `npm run record-histories -- <label> [scenario…]`: runs one task per scenario (or only those named) on a fresh dev server and
 * saves each workflow's event history as test/histories/<label>-<scenario>.json. The replay test
 * replays every saved history against the current workflow code, so a change that would break
 * running tasks fails CI. Record under a new label when the workflow gains behaviour, and keep
 * the older labels (see README, "Changing the workflow safely").
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { Receiver, respondJson } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { stagedAttemptParked } from './support/flow-keys.js';
import { startHarness, stopOwnServer } from './support/harness.js';
import { limiterWorkflowId } from '../workflows/flow-control-contract.js';

const HISTORIES_DIR = fileURLToPath(new URL('../../test/histories/', import.meta.url));

async function main(): Promise<void> {
  const label = process.argv[2];
  if (label === undefined || !/^[a-z0-9-]+$/.test(label)) {
    throw new Error('usage: npm run record-histories -- <label>   (e.g. v3; lower-case letters, digits, dashes)');
  }
  const harness = await startHarness();
  // Heartbeats 24 s apart: a cancel reaches the held call through the workflow's cut-off
  // (abortHeldCall on the holding worker), which fails the attempt (non-retryable) rather than
  // confirming a cancellation: the `cancel-wins-over-failure` branch of the workflow.
  const slowBeats = await startHarness({ env: { ASYNCQUEUE_HEARTBEAT_TIMEOUT: '60' } });
  const receiver = await Receiver.start();
  receiver.script('/flaky', respondJson(503, {}), respondJson(200, { reportUrl: 'https://files.example/r.pdf' }));
  receiver.always('/broken', respondJson(500, { error: 'down' }));
  receiver.always('/hold', () => undefined);
  receiver.script('/hook', respondJson(500, {}), respondJson(200, {}));
  const acceptAsync = respondJson(202, {}, { 'asyncqueue-completion': 'async' });
  receiver.always('/accept', acceptAsync);
  receiver.script('/accept-fail-then-ok', acceptAsync, respondJson(200, { second: true }));
  receiver.always('/plain-202', respondJson(202, { queued: true }));
  receiver.script('/silent-once', () => undefined, respondJson(200, { late: 'ok' }));
  receiver.script('/flow-flaky', respondJson(503, {}, { 'retry-after': '1' }), respondJson(200, { rendered: true }));
  const flowKey = `recorded-${Date.now()}`;
  const flowControl = { key: flowKey, parallelism: 1, rate: 20 };

  const scenarios: Record<string, Record<string, unknown>> = {
    'succeeded-after-retry-with-webhook-retry': {
      callbackUrl: receiver.url('/flaky'),
      payload: { jobId: 'j1' },
      webhookUrl: receiver.url('/hook'),
      retries: 2,
    },
    'failed-after-retries-with-webhook': {
      callbackUrl: receiver.url('/broken'),
      webhookUrl: receiver.url('/hook-ok'),
      retries: 1,
    },
    'cancelled-in-flight': { callbackUrl: receiver.url('/hold'), webhookUrl: receiver.url('/hook-ok'), timeout: 60 },
    'cancelled-during-delay': { callbackUrl: receiver.url('/never'), delay: 600 },
    'delayed-then-succeeded': { callbackUrl: receiver.url('/ok'), delay: 1 },
    'progress-then-async-completion': { callbackUrl: receiver.url('/accept'), webhookUrl: receiver.url('/hook-ok'), timeout: 60 },
    'async-failed-then-retried': { callbackUrl: receiver.url('/accept-fail-then-ok'), retries: 2, timeout: 60 },
    // Attempt records (v5): a timed-out attempt signalled, a webhook answer with a body.
    'timed-out-then-succeeded': { callbackUrl: receiver.url('/silent-once'), webhookUrl: receiver.url('/hook-ok'), timeout: 1 },
    'plain-202-succeeded': { callbackUrl: receiver.url('/plain-202'), webhookUrl: receiver.url('/hook-ok') },
    'cancelled-through-temporal-in-flight': {
      callbackUrl: receiver.url('/hold'),
      webhookUrl: receiver.url('/hook-ok'),
      timeout: 60,
    },
    'cancelled-by-cut-off-cancel-wins-over-failure': {
      callbackUrl: receiver.url('/hold'),
      webhookUrl: receiver.url('/hook-ok'),
      timeout: 60,
    },
    'flow-controlled-retried-after-retry-after': {
      callbackUrl: receiver.url('/flow-flaky'),
      webhookUrl: receiver.url('/hook-ok'),
      retries: 2,
      priority: 2,
      flowControl,
    },
    'flow-controlled-cancelled-while-waiting': { callbackUrl: receiver.url('/never'), flowControl },
  };
  const holds = () => receiver.to('/hold').length;
  const only = process.argv.slice(3);
  const wanted = (name: string): boolean => only.length === 0 || only.includes(name);
  try {
    for (const [name, body] of Object.entries(scenarios)) {
      if (!wanted(name)) continue;
      const api = name === 'cancelled-by-cut-off-cancel-wins-over-failure' ? slowBeats : harness;
      const heldBefore = holds();
      if (name === 'flow-controlled-cancelled-while-waiting') await api.api('POST', `/v1/flow-control/${flowKey}/pause`);
      const created = await api.api('POST', '/v1/tasks', body);
      const id = created.body.id as string;
      const completeAsync = async (path: string, outcome: Record<string, unknown>, progress?: Record<string, unknown>) => {
        const call = await eventually(async () => receiver.to(path).find((c) => c.headers['asyncqueue-task-id'] === id), {
          what: `${name} called`,
        });
        const token = { 'asyncqueue-task-token': String(call.headers['asyncqueue-task-token']) };
        if (progress !== undefined) await api.api('POST', `/v1/tasks/${id}/progress`, progress, token);
        const endpoint = 'result' in outcome ? 'complete' : 'fail';
        await eventually(
          async () => ((await api.api('POST', `/v1/tasks/${id}/${endpoint}`, outcome, token)).status === 202 ? true : undefined),
          {
            what: `${name} ${endpoint}`,
          },
        );
      };
      if (name === 'progress-then-async-completion') {
        await completeAsync('/accept', { result: { done: true } }, { percent: 50, message: 'half way' });
      }
      if (name === 'async-failed-then-retried')
        await completeAsync('/accept-fail-then-ok', { error: { message: 'renderer crashed' } });
      if (name === 'flow-controlled-cancelled-while-waiting') {
        await eventually(async () => ((await api.task(id)).flowControl?.waiting === true ? true : undefined), {
          what: `${name} waiting`,
        });
        await api.api('POST', `/v1/tasks/${id}/cancel`, { reason: 'recorded scenario' });
      }
      if (name.startsWith('cancelled')) {
        if (name !== 'cancelled-during-delay')
          await eventually(async () => (holds() > heldBefore ? true : undefined), { what: `${name} held` });
        if (name === 'cancelled-through-temporal-in-flight') await api.client.workflow.getHandle(`task-${id}`).cancel();
        else await api.api('POST', `/v1/tasks/${id}/cancel`, { reason: 'recorded scenario' });
      }
      const handle = api.client.workflow.getHandle(`task-${id}`);
      await eventually(async () => ((await handle.describe()).status.name === 'RUNNING' ? undefined : true), {
        timeoutMs: 30_000,
        what: `${name} to close`,
      });
      const history = await handle.fetchHistory();
      await writeFile(`${HISTORIES_DIR}${label}-${name}.json`, `${historyToJSON(history)}\n`);
      process.stdout.write(`recorded ${name} (${history.events?.length ?? 0} events)\n`);
    }
    // A schedule's run: its input has no id or createdAt (workflows/scheduled-input.ts).
    if (wanted('scheduled-run')) {
      const scheduleId = `record-${Date.now()}`;
      const schedule = {
        id: scheduleId,
        every: 3600,
        paused: true,
        task: { callbackUrl: receiver.url('/ok'), webhookUrl: receiver.url('/hook-ok') },
      };
      await harness.api('POST', '/v1/schedules', schedule);
      await harness.api('POST', `/v1/schedules/${scheduleId}/trigger`);
      const [taskId] = await eventually(async () => {
        const ids = (await harness.api('GET', `/v1/schedules/${scheduleId}`)).body.recentTaskIds as string[];
        return ids.length > 0 ? ids : undefined;
      });
      await harness.api('DELETE', `/v1/schedules/${scheduleId}`);
      const handle = harness.client.workflow.getHandle(`task-${taskId}`);
      await eventually(async () => ((await handle.describe()).status.name === 'RUNNING' ? undefined : true), {
        timeoutMs: 30_000,
        what: 'scheduled-run to close',
      });
      const history = await handle.fetchHistory();
      await writeFile(`${HISTORIES_DIR}${label}-scheduled-run.json`, `${historyToJSON(history)}\n`);
      process.stdout.write(`recorded scheduled-run (${history.events?.length ?? 0} events)\n`);
    }
    // Staged hand-over (v10): a task staged behind a held call is handed its slot in the worker; a
    // second, staged too, stands down on a pause and is cancelled; then the key's limiter.
    if (wanted('staged')) {
      const stagedKey = `recorded-staged-${Date.now()}`;
      const stagedFlow = { key: stagedKey, parallelism: 1 };
      let openGate = (): void => undefined;
      const gate = new Promise<void>((resolve) => {
        openGate = resolve;
      });
      receiver.always('/staged-gate', async (_received, response) => {
        await gate;
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{"ok":true}');
      });
      const create = async (path: string): Promise<string> =>
        (await harness.api('POST', '/v1/tasks', { callbackUrl: receiver.url(path), flowControl: stagedFlow })).body.id as string;
      const parked = async (id: string): Promise<true | undefined> =>
        (await stagedAttemptParked(harness, id)) ? true : undefined;
      const blocker = await create('/staged-gate');
      await eventually(async () => (receiver.to('/staged-gate').length === 1 ? true : undefined), { what: 'the blocker held' });
      const handed = await create('/ok');
      const standing = await create('/never');
      await eventually(async () => ((await parked(handed)) && (await parked(standing)) ? true : undefined), {
        what: 'both staged attempts parked',
      });
      // A pause stands both down; one is cancelled; after the resume the other parks again and
      // is handed the blocker's slot.
      await harness.api('POST', `/v1/flow-control/${stagedKey}/pause`);
      await eventually(async () => ((await parked(handed)) || (await parked(standing)) ? undefined : true), {
        what: 'both to stand down',
      });
      await harness.api('POST', `/v1/tasks/${standing}/cancel`, { reason: 'recorded scenario' });
      await harness.api('POST', `/v1/flow-control/${stagedKey}/resume`);
      await eventually(async () => await parked(handed), { what: 'the first to park again' });
      openGate();
      const closed = async (id: string) => {
        const handle = harness.client.workflow.getHandle(`task-${id}`);
        await eventually(async () => ((await handle.describe()).status.name === 'RUNNING' ? undefined : true), {
          timeoutMs: 30_000,
          what: `task ${id} to close`,
        });
        return handle.fetchHistory();
      };
      await closed(blocker);
      for (const [name, id] of [
        ['staged-stood-down-then-handed-over', handed],
        ['staged-stood-down-then-cancelled', standing],
      ] as const) {
        const history = await closed(id);
        await writeFile(`${HISTORIES_DIR}${label}-${name}.json`, `${historyToJSON(history)}\n`);
        process.stdout.write(`recorded ${name} (${history.events?.length ?? 0} events)\n`);
      }
      const limiter = harness.client.workflow.getHandle(limiterWorkflowId(stagedKey));
      await limiter.terminate('recorded');
      const history = await limiter.fetchHistory();
      await writeFile(`${HISTORIES_DIR}${label}-flow-limiter-staged.json`, `${historyToJSON(history)}\n`);
      process.stdout.write(`recorded flow-limiter-staged (${history.events?.length ?? 0} events)\n`);
    }
    if (wanted('flow-limiter')) {
      // The key's limiter never ends by itself: its history so far, closed by a terminate.
      const limiter = harness.client.workflow.getHandle(limiterWorkflowId(flowKey));
      await limiter.terminate('recorded');
      const history = await limiter.fetchHistory();
      await writeFile(`${HISTORIES_DIR}${label}-flow-limiter.json`, `${historyToJSON(history)}\n`);
      process.stdout.write(`recorded flow-limiter (${history.events?.length ?? 0} events)\n`);
    }
  } finally {
    await slowBeats.close();
    await harness.close();
    await receiver.close();
    await stopOwnServer();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
