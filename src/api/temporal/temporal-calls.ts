/**
 * The API's calls to Temporal, each with a deadline kept even when the client's retries would
 * outlast it, errors translated into the API's own (translate-errors.ts), and a fail-fast 503
 * once Temporal is known to be unreachable (availability.ts).
 */
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import {
  TASK_MEMO_KEY,
  TASK_WORKFLOW_TYPE,
  taskStateQuery,
  workflowIdForTask,
  type TaskState,
} from '../../../workflows/task-contract.js';
import { TaskNotFoundError, TemporalUnavailableError } from '../../shared/errors.js';
import { TemporalAvailability } from './availability.js';
import { translateTemporalError, type TranslateContext } from './translate-errors.js';

export type Handle = ReturnType<Client['workflow']['getHandle']>;

export interface TemporalCallsOptions {
  namespace: string;
  rpcTimeoutMs: number;
  /** How long a read waits for a worker to answer a query before it uses what the server stores. */
  queryTimeoutMs: number;
}

export class TemporalCalls {
  private readonly availability: TemporalAvailability;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    readonly client: Client,
    private readonly options: TemporalCallsOptions,
  ) {
    this.availability = new TemporalAvailability({
      intervalMs: 1_000,
      probe: () =>
        client.connection.withDeadline(Date.now() + 1_000, () =>
          client.workflowService.describeNamespace({ namespace: options.namespace }),
        ),
    });
  }

  /**
   * Every Temporal call made for a request gets a deadline, so an outage becomes a quick 503; once
   * one finds Temporal unreachable, the next ones answer 503 at once until it is back.
   */
  async rpc<T>(call: () => Promise<T>, context: TranslateContext = {}, via: Client = this.client): Promise<T> {
    this.availability.assertAvailable();
    const { rpcTimeoutMs } = this.options;
    // The deadline and the abort are the connection's that makes the call: a task's start may go
    // through the in-process worker's native connection (task-service.ts), which keeps the
    // deadline and ignores the abort (SDK 1.24), so such a call ends at its deadline.
    const { connection } = via;
    let timer: NodeJS.Timeout | undefined;
    const abort = new AbortController();
    const attempt = connection.withAbortSignal(abort.signal, () => connection.withDeadline(Date.now() + rpcTimeoutMs, call));
    this.inFlight.add(attempt);
    try {
      // The client's own retries can outlast the gRPC deadline by a second or more (measured:
      // 2.9–3.7 s for a 2 s deadline with Temporal down), so the deadline is also kept here, and
      // the call is aborted when it passes.
      const deadline = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          abort.abort();
          reject(new TemporalUnavailableError(`Temporal did not answer within ${rpcTimeoutMs / 1000} s; retry shortly`));
        }, rpcTimeoutMs);
      });
      return await Promise.race([attempt, deadline]);
    } catch (err) {
      const translated = translateTemporalError(err, context);
      if (translated instanceof TemporalUnavailableError) this.availability.reportUnreachable();
      throw translated;
    } finally {
      clearTimeout(timer);
      // Settled or not, the request is answered; close() still waits for the call to end.
      void attempt.then(
        () => this.inFlight.delete(attempt),
        () => this.inFlight.delete(attempt),
      );
    }
  }

  handle(id: string, runId?: string): Handle {
    return this.client.workflow.getHandle(workflowIdForTask(id), runId);
  }

  /** The task's workflow; TaskNotFoundError for an unknown id or another program's workflow. */
  async describe(id: string): Promise<WorkflowExecutionDescription> {
    const description = await this.rpc(() => this.handle(id).describe(), { taskId: id });
    if (description.type !== TASK_WORKFLOW_TYPE || description.memo?.[TASK_MEMO_KEY] === undefined) {
      throw new TaskNotFoundError(id);
    }
    return description;
  }

  async queryState(id: string): Promise<TaskState> {
    return this.queryWithin(() => this.handle(id).query(taskStateQuery));
  }

  /** A query, given as long as a read waits for a worker to answer. */
  async queryWithin<T>(query: () => Promise<T>): Promise<T> {
    return this.client.connection.withDeadline(Date.now() + this.options.queryTimeoutMs, query);
  }

  /** Temporal is reachable and answers for our namespace. */
  async ready(): Promise<boolean> {
    if (!this.availability.available) return false;
    try {
      await this.rpc(() => this.client.workflowService.describeNamespace({ namespace: this.options.namespace }));
      return true;
    } catch {
      return false;
    }
  }

  /** Stops probing, and waits for calls that outlived their request's deadline, so that none is left to retry on a closed connection. */
  async close(): Promise<void> {
    this.availability.close();
    await Promise.allSettled([...this.inFlight]);
  }
}
