/**
 * A namespace of a test's own, for a test that acts on whatever it finds listed (the fuzz run
 * cancels tasks it read from the list): in the shared `default` namespace that would be other
 * files' tasks.
 */
import { randomUUID } from 'node:crypto';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { ensureSearchAttributes } from '../../src/shared/search-attributes.js';
import { eventually } from './eventually.js';

export async function createNamespace(address: string, prefix: string): Promise<string> {
  const namespace = `${prefix}-${randomUUID()}`;
  const connection = await Connection.connect({ address });
  try {
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
    // A new namespace is served once the server's namespace cache has it, and its search
    // attribute once visibility knows it: both take a moment.
    await eventually(async () => ((await ensureSearchAttributes(connection, namespace)) ? true : undefined), {
      timeoutMs: 30_000,
      what: `namespace ${namespace} with its search attributes`,
    });
    await eventually(
      async () => {
        await connection.workflowService.listWorkflowExecutions({ namespace, pageSize: 1, query: "TaskStatus = 'running'" });
        return true;
      },
      { timeoutMs: 30_000, what: `visibility queries in ${namespace}` },
    );
  } finally {
    await connection.close();
  }
  return namespace;
}
