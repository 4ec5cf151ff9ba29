/**
 * The client's types come from the same TypeBox schemas the API validates and serializes with,
 * so a field added to the API appears here with the same shape. Type-only imports: the client
 * loads none of the server's code at run time.
 */
import type { Static } from 'typebox';
import type {
  CreateTaskBody,
  CreatedTaskSchema,
  ListTasksQuery,
  TaskListSchema,
  TaskStatusSchema,
  TaskViewSchema,
} from '../api/schemas.js';
import type { BatchCreatedSchema, BatchTaskSchema } from '../api/batch/batch-schemas.js';
import type {
  BulkBody,
  CreatedOperationSchema,
  OperationViewSchema,
  ReplayTaskBody,
  ReplayedTaskSchema,
} from '../api/operation-schemas.js';
import type { AttemptListSchema, AttemptSchema } from '../api/attempt-schemas.js';
import type { FlowKeyListSchema, FlowKeyViewSchema, FlowLimitsBody } from '../api/flow-control/flow-control-schemas.js';

export type CreateTaskInput = Static<typeof CreateTaskBody>;
export type CreatedTask = Static<typeof CreatedTaskSchema>;
export type Task = Static<typeof TaskViewSchema>;
export type TaskStatus = Static<typeof TaskStatusSchema>;
export type ListTasksParams = Static<typeof ListTasksQuery>;
export type TaskPage = Static<typeof TaskListSchema>;
/** One entry of `aq.tasks.createMany`: a create body with its own optional `idempotencyKey`. */
export type BatchTaskInput = Static<typeof BatchTaskSchema>;
/** One entry's outcome: 202 created, 200 an idempotent repeat (with `task`), or an error status with `error`. */
export type BatchResult = Static<typeof BatchCreatedSchema>['results'][number];
export type ReplayOverrides = NonNullable<Static<typeof ReplayTaskBody>>;
export type ReplayedTask = Static<typeof ReplayedTaskSchema>;
export type BulkRequest = Static<typeof BulkBody>;
export type CreatedOperation = Static<typeof CreatedOperationSchema>;
export type Operation = Static<typeof OperationViewSchema>;
/** One callback or webhook attempt (`aq.tasks.attempts(id)`). */
export type Attempt = Static<typeof AttemptSchema>;
export type AttemptList = Static<typeof AttemptListSchema>;
/** A flow-control key's limits and live counts (`aq.flowControl`). */
export type FlowKey = Static<typeof FlowKeyViewSchema>;
export type FlowLimits = Static<typeof FlowLimitsBody>;
/** One page of `aq.flowControl.page()`. */
export type FlowKeyPage = Static<typeof FlowKeyListSchema>;

/** The webhook's JSON body. */
export interface TaskEvent {
  type: 'task.succeeded' | 'task.failed' | 'task.cancelled';
  timestamp: string;
  taskId: string;
  status: TaskStatus;
  attempts: number;
  result?: unknown;
  error?: { code: string; message: string; statusCode?: number };
}

export const TERMINAL_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];
