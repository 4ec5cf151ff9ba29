/**
 * How long Temporal keeps a finished task (the namespace's retention). The embedded dev server's
 * namespace is AsyncQueue's own, so `npm start` sets it from ASYNCQUEUE_RETENTION_DAYS; a
 * cluster's namespace belongs to its operators, so there AsyncQueue only reports it.
 */
import type { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';

const DAY_SECONDS = 86_400;

export async function setRetention(connection: Connection, namespace: string, days: number): Promise<void> {
  await connection.workflowService.updateNamespace({
    namespace,
    config: { workflowExecutionRetentionTtl: msToTs(days * DAY_SECONDS * 1000) },
  });
}

/** The namespace's retention in days (fractions possible), or undefined when the server does not say. */
export async function getRetentionDays(connection: Connection, namespace: string): Promise<number | undefined> {
  const described = await connection.workflowService.describeNamespace({ namespace });
  const seconds = described.config?.workflowExecutionRetentionTtl?.seconds;
  return seconds === undefined || seconds === null ? undefined : Number(seconds) / DAY_SECONDS;
}
