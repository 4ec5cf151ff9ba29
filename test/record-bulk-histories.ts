/**
 * `npx tsc -p tsconfig.json && node dist/test/record-bulk-histories.js <label>`: runs one bulk
 * operation per scenario (a cancel by ids, a replay by filter) on a fresh dev server and saves
 * each `bulkOperationWorkflow` history as test/histories/<label>-bulk-<scenario>.json, which
 * workflow-replay.test.ts replays with the task histories.
 */
import { writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { workflowIdForOperation } from '../workflows/bulk-operation-contract.js';
import { Receiver, respondJson } from './support/receiver.js';
import { eventually } from './support/eventually.js';
import { startHarness, stopOwnServer } from './support/harness.js';
import { visibilityCaughtUp } from './support/cleanup.js';

const HISTORIES_DIR = fileURLToPath(new URL('../../test/histories/', import.meta.url));

const label = process.argv[2];
if (label === undefined || !/^[a-z0-9-]+$/.test(label)) throw new Error('usage: node dist/test/record-bulk-histories.js <label>');
const harness = await startHarness();
const receiver = await Receiver.start();
receiver.always('/broken', respondJson(500, {}));
try {
  const scheduled = await harness.createTask({ callbackUrl: receiver.url('/never'), delay: 600 });
  const tag = `record:${randomUUID().slice(0, 8)}`;
  const failed = await harness.createTask({ callbackUrl: receiver.url('/broken'), retries: 0, labels: [tag] });
  await harness.waitForEnd(failed);
  await visibilityCaughtUp(harness);
  const scenarios: Record<string, Record<string, unknown>> = {
    'cancel-by-ids': { action: 'cancel', ids: [scheduled, randomUUID()] },
    'replay-by-filter': { action: 'replay', filter: { label: tag, status: 'failed' } },
  };
  for (const [name, body] of Object.entries(scenarios)) {
    const started = await harness.api('POST', '/v1/tasks/bulk', body);
    const id = started.body.id as string;
    await eventually(async () =>
      (await harness.api('GET', `/v1/operations/${id}`)).body.state === 'running' ? undefined : true,
    );
    const history = await harness.client.workflow.getHandle(workflowIdForOperation(id)).fetchHistory();
    await writeFile(`${HISTORIES_DIR}${label}-bulk-${name}.json`, `${historyToJSON(history)}\n`);
    process.stdout.write(`recorded ${label}-bulk-${name}\n`);
  }
} finally {
  await harness.close();
  await receiver.close();
  await stopOwnServer();
}
