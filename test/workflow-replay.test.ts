/**
 * Workflow code safety: the workflows bundle the way the worker bundles them (a bad import fails
 * here, not in production), and every recorded history replays against the current code, so a
 * non-deterministic change fails the suite before it can break tasks that are already running.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from './support/harness.js';

const HISTORIES_DIR = fileURLToPath(new URL('../../test/histories/', import.meta.url));

describe('workflow code', () => {
  it('bundles without Node-only modules', async () => {
    const bundle = await workflowBundle();
    assert.ok(bundle.code.includes('taskWorkflow'));
  });

  it('replays every recorded history deterministically', async () => {
    const files = (await readdir(HISTORIES_DIR)).filter((name) => name.endsWith('.json')).sort();
    assert.ok(files.length >= 5, `expected recorded histories in ${HISTORIES_DIR}`);
    const histories = await Promise.all(
      files.map(async (file) => ({
        workflowId: file,
        history: historyFromJSON(JSON.parse(await readFile(`${HISTORIES_DIR}${file}`, 'utf8'))),
      })),
    );
    const results = Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories);
    let replayed = 0;
    for await (const result of results) {
      assert.equal(result.error, undefined, `${result.workflowId}: ${String(result.error)}`);
      replayed++;
    }
    assert.equal(replayed, files.length);
  });
});
