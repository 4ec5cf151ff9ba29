/**
 * The embedded dev server's settings (src/dev/dev-server.ts) that change what each task costs it,
 * read from its own counters: it serves search attributes from its cache, where the CLI's
 * `start-dev` default rereads them (and the namespace that maps them) from SQLite on every use.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { DevServer } from '../src/dev/dev-server.js';
import { findMetricsEndpoint } from '../tools/bench/engine.js';
import { scrapeRequests, type RequestCounts } from '../tools/bench/server-metrics.js';
import { TASK_STATUS_SEARCH_ATTRIBUTE } from '../workflows/task-contract.js';
import { onDevServerOnly } from './support/engine.js';
import { eventually } from './support/eventually.js';

/** The history-store reads the forced refresh makes: the attributes' definitions, the namespace's aliases. */
const SEARCH_ATTRIBUTE_READS = ['history-store|GetCurrentClusterMetadata', 'history-store|GetNamespace'];
const STARTS = 20;

let server: DevServer;
let connection: Connection;
let metricsUrl: string;

before(async () => {
  server = await DevServer.start({ port: 0, uiPort: null, namespace: 'default' });
  connection = await Connection.connect({ address: server.address });
  const found = await findMetricsEndpoint(server.pid!, server.address);
  assert.ok(found, "the dev server's /metrics");
  metricsUrl = found;
});

after(async () => {
  await connection?.close();
  await server?.stop();
});

const searchAttributeReads = (counts: RequestCounts): number =>
  SEARCH_ATTRIBUTE_READS.reduce((sum, key) => sum + (counts.get(key) ?? 0), 0);

describe('the embedded dev server', onDevServerOnly("the embedded server's own settings"), () => {
  it('serves search attributes from its cache: starts, visibility writes and lists read none from its database', async () => {
    const client = new Client({ connection, namespace: 'default' });
    const queue = `settings-${randomUUID()}`;
    // The server publishes its counters on a timer, all of them together: once they hold a first
    // start, they also hold every read the server made while it booted (which are not this test's;
    // counted from a scrape right after boot, they once made 17 "reads" for 20 starts). That start
    // also warms whatever cache a first use fills.
    const creates = (counts: RequestCounts | undefined): number => counts?.get('history-store|CreateWorkflowExecution') ?? 0;
    const booted = creates(await scrapeRequests([metricsUrl]));
    const warmUp = await client.workflow.start('noSuchWorkflow', {
      taskQueue: queue,
      workflowId: `${queue}-warm-up`,
      typedSearchAttributes: [{ key: TASK_STATUS_SEARCH_ATTRIBUTE, value: 'running' }],
    });
    const before = await eventually(
      async () => {
        const counts = await scrapeRequests([metricsUrl]);
        return counts !== undefined && creates(counts) > booted ? counts : undefined;
      },
      { what: "the server's counters to hold the warm-up start" },
    );
    // Workflows nobody runs: each start carries a search attribute (the frontend maps its alias)
    // and writes a visibility record with it; the list then reads them back through the alias.
    for (let i = 0; i < STARTS; i++) {
      await client.workflow.start('noSuchWorkflow', {
        taskQueue: queue,
        workflowId: `${queue}-${i}`,
        typedSearchAttributes: [{ key: TASK_STATUS_SEARCH_ATTRIBUTE, value: 'running' }],
      });
    }
    await eventually(
      async () => {
        const { count } = await client.workflow.count(`TaskQueue = '${queue}' AND TaskStatus = 'running'`);
        return count === STARTS + 1 ? true : undefined;
      },
      { what: `${STARTS} visibility records` },
    );
    // The server publishes its counters every few seconds: read them once they hold every start
    // and every visibility record (the reads, if any, come in the same operations).
    const grew = (counts: RequestCounts, key: string): number => (counts.get(key) ?? 0) - (before.get(key) ?? 0);
    const after = await eventually(
      async () => {
        const counts = await scrapeRequests([metricsUrl]);
        if (counts === undefined) return undefined;
        const done =
          grew(counts, 'history-store|CreateWorkflowExecution') >= STARTS &&
          grew(counts, 'visibility-store|RecordWorkflowExecutionStarted') >= STARTS;
        return done ? counts : undefined;
      },
      { what: "the server's counters to hold every start" },
    );
    // Rereading on every use costs at least two reads a start (its alias, its record) and more for
    // each list; the cache rereads once a minute at most.
    const reads = searchAttributeReads(after) - searchAttributeReads(before);
    assert.ok(reads <= 2, `${reads} search-attribute reads from the database for ${STARTS} starts and their lists`);
    for (const handle of Array.from({ length: STARTS }, (_, i) => client.workflow.getHandle(`${queue}-${i}`)))
      await handle.terminate('test done');
    await warmUp.terminate('test done');
  });
});
