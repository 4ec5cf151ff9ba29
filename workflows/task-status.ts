/**
 * A task's statuses, on their own and free of imports: the API's schemas, and through them the
 * client SDK's published types, use them without pulling in the Temporal SDK's types.
 */
export const TASK_STATUSES = ['scheduled', 'pending', 'running', 'retrying', 'succeeded', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const TERMINAL_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];
export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}
