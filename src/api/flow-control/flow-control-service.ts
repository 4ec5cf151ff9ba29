/**
 * Flow-control keys on Temporal: each key is one limiter workflow (workflows/flow-limiter.ts).
 * Changes are signals, with signal-with-start where a key may be new, so they are durable in the
 * limiter's history the moment Temporal accepts them, worker or no worker; the view is the
 * limiter's query, which the server answers after the signals before it.
 */
import { WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import {
  FLOW_MEMO_KEY,
  FLOW_LIMITER_WORKFLOW_TYPE,
  configureFlowSignal,
  flowKeyQuery,
  limiterStartOptions,
  limiterWorkflowId,
  tryAcquireSlotsUpdate,
  type FirstSlotAnswer,
  type FirstSlotRequest,
  type FlowConfiguration,
  type FlowKeyView,
  type FlowLimiterInput,
  type FlowLimits,
} from '../../../workflows/flow-control-contract.js';
import type { flowLimiterWorkflow } from '../../../workflows/flow-limiter.js';
import type { TaskPolicy } from '../../../workflows/task-contract.js';
import { FlowKeyNotFoundError, TemporalUnavailableError } from '../../shared/errors.js';
import { translateTemporalError } from '../temporal/translate-errors.js';
import type { TemporalCalls } from '../temporal/temporal-calls.js';
import { decodePayload } from '../tasks/list-query.js';
import { nextCursor, pageToken, refuseUnusableCursor } from '../temporal/list-cursor.js';
import { MAX_KEYS_PER_PAGE } from './flow-control-schemas.js';
import { FirstSlotAsks } from './first-slot-asks.js';

export interface FlowControlServiceOptions {
  namespace: string;
  taskQueue: string;
  policy: TaskPolicy;
  queryTimeoutMs: number;
  /** Authenticates list cursors (the same key as the task list's). */
  cursorKey: Buffer;
}

export interface FlowKeyPage {
  keys: FlowKeyView[];
  nextCursor: string | null;
}

/** The list queries this many limiters at once. */
const QUERY_CONCURRENCY = 20;

/**
 * How long a create waits for the limiter's answer about a first slot before it starts the task
 * without one (the task then asks for itself): an answer needs a worker, a create does not.
 */
export const FIRST_SLOT_WAIT_MS = 1_000;

export class FlowControlService {
  private readonly firstSlotAsks = new FirstSlotAsks(
    (key, asks, startLimits, deadline) => this.sendFirstSlotAsks(key, asks, startLimits, deadline),
    FIRST_SLOT_WAIT_MS,
  );

  constructor(
    private readonly calls: TemporalCalls,
    private readonly options: FlowControlServiceOptions,
  ) {}

  /** A new key's limiter: unpaused, with these limits. */
  private limiterInput(key: string, limits: FlowLimits, paused = false): FlowLimiterInput {
    return {
      key,
      limits,
      paused,
      // A slot held by a workflow stopped from outside is looked for after twice the time a dead
      // worker's attempt takes to be noticed (its heartbeat timeout).
      holderCheckIntervalMs: Math.max(1_000, 2 * this.options.policy.heartbeatTimeoutMs),
    };
  }

  /** Sends the key's limiter `configuration`, starting it with `startLimits` when none runs. */
  async configure(key: string, configuration: FlowConfiguration, startLimits: FlowLimits): Promise<void> {
    const input = this.limiterInput(key, configuration.limits ?? startLimits, configuration.paused ?? false);
    await this.calls.rpc(() =>
      this.calls.client.workflow.signalWithStart<typeof flowLimiterWorkflow, [FlowConfiguration]>(FLOW_LIMITER_WORKFLOW_TYPE, {
        ...limiterStartOptions(input, this.options.taskQueue),
        signal: configureFlowSignal,
        signalArgs: [configuration],
      }),
    );
  }

  /**
   * Asks the key's limiter (started with `startLimits` if none runs) for a due task's first slot,
   * before the task starts: Update-with-Start, one call per key in flight at a time
   * (first-slot-asks.ts). The answer, or undefined when no worker answered within
   * FIRST_SLOT_WAIT_MS (the update may still be applied: a slot granted then is granted again
   * when the task asks for it).
   */
  tryFirstSlot(key: string, request: FirstSlotRequest, startLimits: FlowLimits): Promise<FirstSlotAnswer | undefined> {
    return this.firstSlotAsks.ask(key, request, startLimits);
  }

  private async sendFirstSlotAsks(
    key: string,
    asks: FirstSlotRequest[],
    startLimits: FlowLimits,
    deadline: number,
  ): Promise<FirstSlotAnswer[] | undefined> {
    const startWorkflowOperation = new WithStartWorkflowOperation<typeof flowLimiterWorkflow>(FLOW_LIMITER_WORKFLOW_TYPE, {
      ...limiterStartOptions(this.limiterInput(key, asks[0]?.limits ?? startLimits), this.options.taskQueue),
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    return this.calls.rpc(async () => {
      try {
        return await this.calls.client.connection.withDeadline(deadline, () =>
          this.calls.client.workflow.executeUpdateWithStart(tryAcquireSlotsUpdate, { args: [{ asks }], startWorkflowOperation }),
        );
      } catch (err) {
        if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return undefined;
        // Unreachable: the 503 comes now, before a task started. Any other refusal (an update
        // arriving as the limiter continues as new is aborted; the server's limit on a
        // workflow's updates in flight; a namespace with Update-with-Start turned off) leaves the
        // first slot to the task, which asks; a namespace really throttled refuses its start.
        if (translateTemporalError(err) instanceof TemporalUnavailableError) throw err;
        return undefined;
      }
    });
  }

  async set(key: string, limits: FlowLimits): Promise<FlowKeyView> {
    await this.configure(key, { limits }, limits);
    return this.get(key, { ...limits });
  }

  /** Pause or resume a key some task or `PUT` named; FlowKeyNotFoundError otherwise. */
  async setPaused(key: string, paused: boolean): Promise<FlowKeyView> {
    await this.calls.rpc(async () => {
      try {
        await this.calls.client.workflow.getHandle(limiterWorkflowId(key)).signal(configureFlowSignal, { paused });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new FlowKeyNotFoundError(key);
        throw err;
      }
    });
    return this.get(key, { paused });
  }

  /**
   * The limiter's live view (its query, which the server answers after the signals before it).
   * When no worker answers within the query timeout: what Temporal stores, the memo of the
   * limiter's last change of limits or pause, with `changed` (what this request just set) on top.
   * A slow query must not count as Temporal being unreachable, so it is not one of `rpc`'s calls.
   */
  async get(key: string, changed: Partial<FlowKeyView> = {}): Promise<FlowKeyView> {
    const handle = this.calls.client.workflow.getHandle(limiterWorkflowId(key));
    try {
      return await this.calls.client.connection.withDeadline(Date.now() + this.options.queryTimeoutMs, () =>
        handle.query(flowKeyQuery),
      );
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new FlowKeyNotFoundError(key);
    }
    const description = await this.calls.rpc(async () => {
      try {
        return await handle.describe();
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new FlowKeyNotFoundError(key);
        throw err;
      }
    });
    const stored = description.memo?.[FLOW_MEMO_KEY] as FlowKeyView | undefined;
    if (description.type !== FLOW_LIMITER_WORKFLOW_TYPE || stored === undefined) throw new FlowKeyNotFoundError(key);
    return { ...stored, ...changed, key };
  }

  /**
   * A page of the keys with a running limiter, in the order Temporal's visibility lists them and
   * sorted by key within the page: each limiter's live view, or its stored one once a batch of
   * queries found no worker to answer.
   */
  async list(query: { limit?: number; cursor?: string } = {}): Promise<FlowKeyPage> {
    const page: temporal.api.workflowservice.v1.IListWorkflowExecutionsResponse = await this.calls
      .rpc(() =>
        this.calls.client.workflowService.listWorkflowExecutions({
          namespace: this.options.namespace,
          pageSize: query.limit ?? MAX_KEYS_PER_PAGE,
          query: `WorkflowType = '${FLOW_LIMITER_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'`,
          nextPageToken: pageToken(this.options.cursorKey, query.cursor),
        }),
      )
      .catch(refuseUnusableCursor(query.cursor));
    const stored = new Map<string, FlowKeyView>();
    for (const execution of page.executions ?? []) {
      const view = decodePayload<FlowKeyView>(execution.memo?.fields?.[FLOW_MEMO_KEY]);
      if (view !== undefined) stored.set(view.key, view);
    }
    const next = nextCursor(this.options.cursorKey, page.nextPageToken);

    const keys = [...stored.keys()].sort();
    const views: FlowKeyView[] = [];
    let workerAnswers = true;
    for (let index = 0; index < keys.length; index += QUERY_CONCURRENCY) {
      const batch = keys.slice(index, index + QUERY_CONCURRENCY);
      const answers = workerAnswers
        ? await Promise.all(
            batch.map(async (key) =>
              this.calls.client.connection
                .withDeadline(Date.now() + this.options.queryTimeoutMs, () =>
                  this.calls.client.workflow.getHandle(limiterWorkflowId(key)).query(flowKeyQuery),
                )
                .catch(() => undefined),
            ),
          )
        : [];
      if (answers.every((answer) => answer === undefined)) workerAnswers = false;
      batch.forEach((key, at) => views.push(answers[at] ?? stored.get(key)!));
    }
    return { keys: views, nextCursor: next };
  }
}
