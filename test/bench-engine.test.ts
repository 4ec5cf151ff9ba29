/**
 * The benchmark's dev server (tools/bench/engine.ts) runs as `npm start` runs it, its data in a
 * SQLite file in a folder of its own that goes away when it stops; in memory on request. (In
 * memory, each commit of the server's SQLite walks a page cache holding the whole database, so
 * a task costs it more the more it holds: README, Performance.)
 */
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Connection } from '@temporalio/client';
import { startEngine } from '../tools/bench/engine.js';
import { parseOptions } from '../tools/bench/options.js';
import { withEnv } from './support/environment.js';

// Without TEMPORAL_ADDRESS, as a run that starts its own engine (a shell may have it set).
describe("the benchmark's dev server", () => {
  it('keeps its data in a SQLite file by default and removes the folder when it stops', async () => {
    const engine = await withEnv('TEMPORAL_ADDRESS', undefined, () => startEngine(parseOptions([])));
    let dbFile: string | undefined;
    try {
      assert.equal(engine.kind, 'dev-server');
      assert.ok(engine.dataDir !== null, 'a data folder');
      dbFile = path.join(engine.dataDir, 'temporal.db');
      assert.match(engine.description, /as `npm start` runs it/);
      // Serving from that file: a namespace read goes through it.
      const connection = await Connection.connect({ address: engine.address });
      try {
        await connection.workflowService.describeNamespace({ namespace: engine.namespace });
      } finally {
        await connection.close();
      }
      assert.ok(statSync(dbFile).size > 0, `${dbFile} holds the server's data`);
    } finally {
      await engine.stop();
    }
    assert.equal(existsSync(path.dirname(dbFile)), false, 'the data folder is gone');
  });

  it('keeps everything in memory with --dev-server-store memory', async () => {
    const engine = await withEnv('TEMPORAL_ADDRESS', undefined, () =>
      startEngine(parseOptions(['--dev-server-store', 'memory'])),
    );
    try {
      assert.equal(engine.dataDir, null);
      assert.match(engine.description, /in memory/);
    } finally {
      await engine.stop();
    }
  });
});
