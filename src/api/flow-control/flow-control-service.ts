/**
 * Flow-control keys on Temporal: each key is one limiter workflow (workflows/flow-limiter.ts).
 * Changes are signals, with signal-with-start where a key may be new, so they are durable in the
 * limiter's history the moment Temporal accepts them, worker or no worker; the view is the
 * limiter's query, which the server answers after the signals before it.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import {
  FLOW_LIMITER_ID_PREFIX,
  FLOW_LIMITER_WORKFLOW_TYPE,
  configureFlowSignal,
  flowKeyQuery,
  limiterStartOptions,
  limiterWorkflowId,
  type FlowConfiguration,
  type FlowKeyView,
  type FlowLimiterInput,
  type FlowLimits,
} from '../../../workflows/flow-control-contract.js';
import type { flowLimiterWorkflow } from '../../../workflows/flow-limiter.js';
import type { TaskPolicy } from '../../../workflows/task-contract.js';
import { FlowKeyNotFoundError } from '../../shared/errors.js';
import type { TemporalCalls } from '../temporal/temporal-calls.js';

export interface FlowControlServiceOptions {
  namespace: string;
  taskQueue: string;
  policy: TaskPolicy;
  queryTimeoutMs: number;
}

/** The list answers at most this many keys, and queries this many limiters at once. */
export const MAX_LISTED_KEYS = 1_000;
const QUERY_CONCURRENCY = 20;

export class FlowControlService {
  constructor(
    private readonly calls: TemporalCalls,
    private readonly options: FlowControlServiceOptions,
  ) {}

  /** Sets limits (starting the key's limiter if it is new): a create naming limits, or `PUT`. */
  async configure(key: string, configuration: FlowConfiguration & { limits: FlowLimits }): Promise<void> {
    const input: FlowLimiterInput = {
      key,
      limits: configuration.limits,
      paused: configuration.paused ?? false,
      // A slot held by a workflow stopped from outside is looked for after twice the time a dead
      // worker's attempt takes to be noticed (its heartbeat timeout).
      holderCheckIntervalMs: Math.max(1_000, 2 * this.options.policy.heartbeatTimeoutMs),
    };
    await this.calls.rpc(() =>
      this.calls.client.workflow.signalWithStart<typeof flowLimiterWorkflow, [FlowConfiguration]>(FLOW_LIMITER_WORKFLOW_TYPE, {
        ...limiterStartOptions(input, this.options.taskQueue),
        signal: configureFlowSignal,
        signalArgs: [configuration],
      }),
    );
  }

  async set(key: string, limits: FlowLimits): Promise<FlowKeyView> {
    await this.configure(key, { limits });
    return this.get(key);
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
    return this.get(key);
  }

  async get(key: string): Promise<FlowKeyView> {
    return this.calls.rpc(async () => {
      try {
        return await this.calls.client.connection.withDeadline(Date.now() + this.options.queryTimeoutMs, () =>
          this.calls.client.workflow.getHandle(limiterWorkflowId(key)).query(flowKeyQuery),
        );
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new FlowKeyNotFoundError(key);
        throw err;
      }
    });
  }

  /** Every key with a running limiter, by key. */
  async list(): Promise<FlowKeyView[]> {
    const keys: string[] = [];
    let nextPageToken: Uint8Array | null = null;
    do {
      const token: Uint8Array | null = nextPageToken;
      const page: temporal.api.workflowservice.v1.IListWorkflowExecutionsResponse = await this.calls.rpc(() =>
        this.calls.client.workflowService.listWorkflowExecutions({
          namespace: this.options.namespace,
          pageSize: Math.min(MAX_LISTED_KEYS, 1_000),
          query: `WorkflowType = '${FLOW_LIMITER_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'`,
          nextPageToken: token,
        }),
      );
      for (const execution of page.executions ?? []) {
        const id = execution.execution?.workflowId ?? '';
        if (id.startsWith(FLOW_LIMITER_ID_PREFIX)) keys.push(decodeURIComponent(id.slice(FLOW_LIMITER_ID_PREFIX.length)));
      }
      nextPageToken = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : null;
    } while (nextPageToken !== null && keys.length < MAX_LISTED_KEYS);

    const unique = [...new Set(keys)].sort().slice(0, MAX_LISTED_KEYS);
    const views: FlowKeyView[] = [];
    for (let index = 0; index < unique.length; index += QUERY_CONCURRENCY) {
      const batch = unique.slice(index, index + QUERY_CONCURRENCY);
      const answers = await Promise.all(batch.map(async (key) => this.get(key).catch(() => undefined)));
      for (const answer of answers) if (answer !== undefined) views.push(answer);
    }
    return views;
  }
}
