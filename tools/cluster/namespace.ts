/**
 * The namespace AsyncQueue runs in, with its retention, and the search attributes (TaskStatus,
 * TaskLabels, FlowControlKey: SEARCH_ATTRIBUTES, added the way the API and the worker add them at
 * boot, src/shared/search-attributes.ts). A cluster caches
 * namespaces and search attributes per service for a few seconds, so "registered" is not yet
 * "usable": the setup ends with a workflow started with TaskStatus set and found by a TaskStatus
 * query, which is the first thing a task does.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { ensureSearchAttributes } from '../../src/shared/search-attributes.js';
import { TASK_STATUS_SEARCH_ATTRIBUTE } from '../../workflows/task-contract.js';
import { waitFor } from './processes.js';

const DAY_MS = 86_400_000;

export async function setUpNamespace(
  address: string,
  namespace: string,
  retentionDays: number,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    await registerNamespace(connection, namespace, retentionDays, log);
    await waitFor(
      `namespace ${namespace} did not get its search attributes`,
      async () => {
        const added = await ensureSearchAttributes(connection, namespace);
        if (added.length > 0) log(`added search attribute ${added.join(', ')} to ${namespace}`);
        return true;
      },
      { signal },
    );
    await probe(connection, namespace, signal);
  } finally {
    await connection.close();
  }
}

async function registerNamespace(connection: Connection, namespace: string, retentionDays: number, log: (line: string) => void) {
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs(retentionDays * DAY_MS),
      description: 'AsyncQueue tasks',
    });
    log(`registered namespace ${namespace} (retention ${retentionDays} days)`);
  } catch (err) {
    // ALREADY_EXISTS: a restart; its retention stays as its operators set it.
    if ((err as { code?: number }).code !== 6) throw err;
  }
}

/** Starts a workflow no worker runs, with TaskStatus set, finds it by that value, terminates it. */
async function probe(connection: Connection, namespace: string, signal: AbortSignal | undefined): Promise<void> {
  const client = new Client({ connection, namespace });
  const workflowId = `asyncqueue-cluster-probe-${randomUUID()}`;
  await waitFor(
    `a workflow with TaskStatus set could not be started in ${namespace}`,
    async () => {
      await client.workflow.start('asyncqueueClusterProbe', {
        taskQueue: 'asyncqueue-cluster-probe',
        workflowId,
        typedSearchAttributes: [{ key: TASK_STATUS_SEARCH_ATTRIBUTE, value: 'probe' }],
      });
      return true;
    },
    { signal },
  );
  try {
    await waitFor(
      `a TaskStatus query did not find the probe workflow in ${namespace}`,
      async () => {
        const query = `WorkflowId = '${workflowId}' AND TaskStatus = 'probe'`;
        for await (const found of client.workflow.list({ query })) if (found.workflowId === workflowId) return true;
        return false;
      },
      { signal },
    );
  } finally {
    await client.workflow.getHandle(workflowId).terminate('cluster setup probe');
  }
}
