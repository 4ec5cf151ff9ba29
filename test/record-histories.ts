/**
 * `npm run record-histories -- <label>`: runs one task per scenario on a fresh dev server and
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
import { startHarness, stopOwnServer } from './support/harness.js';

const HISTORIES_DIR = fileURLToPath(new URL('../../test/histories/', import.meta.url));

async function main(): Promise<void> {
  const label = process.argv[2];
  if (label === undefined || !/^[a-z0-9-]+$/.test(label)) {
    throw new Error('usage: npm run record-histories -- <label>   (e.g. v3; lower-case letters, digits, dashes)');
  }
  const harness = await startHarness();
  const receiver = await Receiver.start();
  receiver.script('/flaky', respondJson(503, {}), respondJson(200, { reportUrl: 'https://files.example/r.pdf' }));
  receiver.always('/broken', respondJson(500, { error: 'down' }));
  receiver.always('/hold', () => undefined);
  receiver.script('/hook', respondJson(500, {}), respondJson(200, {}));
  receiver.always('/accept', respondJson(202, {}));

  const scenarios: Record<string, Record<string, unknown>> = {
    'succeeded-after-retry-with-webhook-retry': {
      callbackUrl: receiver.url('/flaky'),
      payload: { jobId: 'j1' },
      webhookUrl: receiver.url('/hook'),
      retries: 2,
    },
    'failed-after-retries-with-webhook': { callbackUrl: receiver.url('/broken'), webhookUrl: receiver.url('/hook-ok'), retries: 1 },
    'cancelled-in-flight': { callbackUrl: receiver.url('/hold'), webhookUrl: receiver.url('/hook-ok'), timeout: 60 },
    'cancelled-during-delay': { callbackUrl: receiver.url('/never'), delay: 600 },
    'delayed-then-succeeded': { callbackUrl: receiver.url('/ok'), delay: 1 },
    'progress-then-async-completion': { callbackUrl: receiver.url('/accept'), webhookUrl: receiver.url('/hook-ok'), timeout: 60 },
  };
  try {
    for (const [name, body] of Object.entries(scenarios)) {
      const created = await harness.api('POST', '/v1/tasks', body);
      const id = created.body.id as string;
      if (name === 'progress-then-async-completion') {
        const [call] = await receiver.waitFor('/accept', 1);
        const token = { 'asyncqueue-task-token': String(call!.headers['asyncqueue-task-token']) };
        await harness.api('POST', `/v1/tasks/${id}/progress`, { percent: 50, message: 'half way' }, token);
        await harness.api('POST', `/v1/tasks/${id}/complete`, { result: { done: true } }, token);
      }
      if (name.startsWith('cancelled')) {
        if (name === 'cancelled-in-flight') await receiver.waitFor('/hold', 1);
        await harness.api('POST', `/v1/tasks/${id}/cancel`, { reason: 'recorded scenario' });
      }
      const handle = harness.client.workflow.getHandle(`task-${id}`);
      await eventually(async () => ((await handle.describe()).status.name === 'RUNNING' ? undefined : true), {
        timeoutMs: 30_000,
        what: `${name} to close`,
      });
      const history = await handle.fetchHistory();
      await writeFile(`${HISTORIES_DIR}${label}-${name}.json`, `${historyToJSON(history)}\n`);
      process.stdout.write(`recorded ${name} (${history.events?.length ?? 0} events)\n`);
    }
  } finally {
    await harness.close();
    await receiver.close();
    await stopOwnServer();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
