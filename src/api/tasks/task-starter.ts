/**
 * A task's workflow start: its first flow-control slot, the start itself (eager when a worker
 * shares this process), and a repeat of an idempotent request told from a conflicting reuse of
 * its key.
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { TASK_MEMO_KEY, TASK_WORKFLOW_TYPE, workflowIdForTask } from '../../../workflows/task-contract.js';
import { taskSearchAttributes, taskSummary } from '../../../workflows/task-start.js';
import type { taskWorkflow } from '../../../workflows/task-workflow.js';
import { storedMemo } from '../../../workflows/task-memo.js';
import type { FlowControlService } from '../flow-control/flow-control-service.js';
import { withFirstSlot } from '../flow-control/first-slot.js';
import type { TemporalCalls } from '../temporal/temporal-calls.js';
import { IdempotencyConflictError, isSameRequest } from './idempotency.js';
import type { PreparedTask } from './prepared-task.js';
import { withDefaults, type TaskView } from './task-views.js';

/** Memo key of the creating request's hash, which tells an idempotent retry from a conflicting reuse. */
const REQUEST_MEMO_KEY = 'request';

export interface EagerStarts {
  /** A client on the connection of a worker in this process for the task queue. */
  client: Client;
  onEagerStart: () => void;
}

export class TaskStarter {
  constructor(
    private readonly calls: TemporalCalls,
    private readonly flowControl: FlowControlService,
    private readonly options: { taskQueue: string; eagerStarts?: EagerStarts | undefined },
    /** The view of a task an earlier request with the same key started. */
    private readonly existing: (id: string) => Promise<TaskView>,
  ) {}

  /** Starts a prepared task's workflow, or finds the task an earlier request with its key made. */
  async start(prepared: PreparedTask): Promise<{ task: TaskView; created: boolean }> {
    const { request, idempotency, id, hash } = prepared;
    // A due flow-controlled task asks for its first slot before it starts (first-slot.ts); its
    // memo then says whether it waits.
    const { input, limitsSet, memo } = await withFirstSlot(this.flowControl, prepared);
    const eager = this.options.eagerStarts;
    const via = eager?.client ?? this.calls.client;
    try {
      const handle = await this.calls.rpc(
        () =>
          via.workflow.start<typeof taskWorkflow>(TASK_WORKFLOW_TYPE, {
            taskQueue: this.options.taskQueue,
            workflowId: workflowIdForTask(id),
            // Keeps an id (and so an idempotency key) taken for as long as the task is retained.
            workflowIdReusePolicy: 'REJECT_DUPLICATE',
            args: [input],
            // The request's hash only tells a retry from a misuse of its idempotency key: a task
            // created without one has a fresh id no other request can start.
            memo: { [TASK_MEMO_KEY]: storedMemo(memo), ...(idempotency !== undefined ? { [REQUEST_MEMO_KEY]: { hash } } : {}) },
            typedSearchAttributes: taskSearchAttributes(input),
            staticSummary: taskSummary(input),
            // Temporal hands the task to the worker only when it has a free slot for it; when not,
            // or when the server does not do eager starts, the start is an ordinary one.
            ...(eager !== undefined ? { requestEagerStart: true } : {}),
          }),
        { sizeField: 'payload' },
        via,
      );
      if (handle.eagerlyStarted) eager?.onEagerStart();
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError) || idempotency === undefined) throw err;
      const description = await this.calls.describe(id);
      const stored = description.memo?.[REQUEST_MEMO_KEY] as { hash?: string } | undefined;
      if (!isSameRequest(stored?.hash, request)) throw new IdempotencyConflictError(id);
      return { task: await this.existing(id), created: false };
    }
    // A create's limits become the key's (the newest wins), unless they went with the ask.
    const flow = input.flowControl;
    if (flow !== undefined && !limitsSet) {
      await this.flowControl.configure(flow.key, prepared.setsFlowLimits ? { limits: flow.limits } : {}, flow.limits);
    }
    return { task: withDefaults(memo), created: true };
  }
}
