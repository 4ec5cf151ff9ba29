/**
 * Schedules on Temporal Schedules (`client.schedule`): they show on the Temporal UI's Schedules
 * page, survive restarts, and pause and trigger there too. Each run starts an ordinary task
 * workflow; Temporal sets `TemporalScheduledById` on it, which the task list filters on.
 *
 * Ours are named `aqs-<id>` and carry the AsyncQueue memo; any other schedule in the namespace is
 * not found here. Nothing secret goes into a schedule beyond what a task's history holds anyway:
 * the task's `headers` are in the action's input, as they are in each task's workflow input.
 */
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError as TemporalScheduleNotFound,
  type ScheduleDescription,
  type ScheduleHandle,
} from '@temporalio/client';
import {
  SCHEDULE_ID_PREFIX,
  TASK_MEMO_KEY,
  DEFAULT_CALLBACK_METHOD,
  TASK_WORKFLOW_TYPE,
  WORKFLOW_ID_PREFIX,
  workflowIdForTask,
  type ScheduledTaskInput,
  type TaskInput,
  type TaskPolicy,
} from '../../../workflows/task-contract.js';
import { MAX_SCHEDULES_PER_PAGE, type ScheduleView } from '../schedule-schemas.js';
import { nextCursor, pageToken, refuseUnusableCursor } from '../temporal/list-cursor.js';
import type { NewTask } from '../tasks/task-service.js';
import type { TemporalCalls } from '../temporal/temporal-calls.js';
import type { FlowControlService } from '../flow-control/flow-control-service.js';
import type { TaskFlowControl } from '../../../workflows/flow-control-contract.js';
import { initialMemo, taskSearchAttributes, taskSummary } from '../../../workflows/task-start.js';
import { ScheduleExistsError, ScheduleNotFoundError } from './schedule-errors.js';

/** The schedule's own memo: what the view shows that Temporal's spec does not keep as given. */
const SCHEDULE_MEMO_KEY = 'asyncqueueSchedule';
/**
 * Runs missed while Temporal was down are started when it returns only this far back: an
 * `every: 1` schedule must not start an hour of runs after an hour's outage.
 */
const CATCHUP_WINDOW_MS = 5 * 60_000;
/** A list describes this many schedules at once. */
const DESCRIBE_CONCURRENCY = 20;

export interface ScheduleListPage {
  schedules: ScheduleView[];
  nextCursor: string | null;
}

export type Overlap = 'skip' | 'allow';

export interface NewSchedule {
  id: string;
  cron?: string;
  every?: number;
  timezone: string;
  task: NewTask;
  paused: boolean;
  overlap: Overlap;
}

interface ScheduleMemo {
  cron?: string;
  every?: number;
  timezone: string;
}

export class ScheduleService {
  constructor(
    private readonly calls: TemporalCalls,
    private readonly options: { namespace: string; taskQueue: string; policy: TaskPolicy; cursorKey: Buffer },
    private readonly flowControl: FlowControlService,
  ) {}

  async create(schedule: NewSchedule): Promise<ScheduleView> {
    const { id, task } = schedule;
    const temporalId = `${SCHEDULE_ID_PREFIX}${id}`;
    const input: ScheduledTaskInput = {
      callbackUrl: task.callbackUrl,
      method: task.method,
      payload: task.payload,
      webhookUrl: task.webhookUrl,
      retries: task.retries,
      timeoutSeconds: task.timeout,
      delaySeconds: 0,
      headers: task.headers,
      policy: this.options.policy,
      scheduleId: id,
      ...(task.labels.length > 0 ? { labels: task.labels } : {}),
      ...(task.flowControl !== undefined ? { flowControl: task.flowControl } : {}),
      ...(task.priority !== undefined ? { priority: task.priority } : {}),
    };
    // Every run starts with the memo and search attributes any task starts with (task-start.ts),
    // made from the input without an id or a creation time: the API fills those in until the run
    // publishes its own memo (workflows/task-memo.ts).
    const asTask: TaskInput = { ...input, id: '', createdAt: '' };
    const own: ScheduleMemo = {
      ...(schedule.cron !== undefined ? { cron: schedule.cron } : { every: schedule.every! }),
      timezone: schedule.timezone,
    };
    await this.calls
      .rpc(
        () =>
          this.calls.client.schedule.create({
            scheduleId: temporalId,
            spec:
              schedule.cron !== undefined
                ? { cronExpressions: [schedule.cron], timezone: schedule.timezone }
                : { intervals: [{ every: schedule.every! * 1000 }], timezone: schedule.timezone },
            action: {
              type: 'startWorkflow',
              workflowType: TASK_WORKFLOW_TYPE,
              // Temporal appends each run's time: `task-aqs-<id>-<time>`, task id `aqs-<id>-<time>`.
              workflowId: workflowIdForTask(temporalId),
              taskQueue: this.options.taskQueue,
              args: [input],
              memo: { [TASK_MEMO_KEY]: initialMemo(asTask) },
              typedSearchAttributes: taskSearchAttributes(asTask),
              staticSummary: `${taskSummary(asTask)} (schedule ${id})`,
            },
            policies: { overlap: schedule.overlap === 'allow' ? 'ALLOW_ALL' : 'SKIP', catchupWindow: CATCHUP_WINDOW_MS },
            state: {
              paused: schedule.paused,
              note: schedule.paused ? 'created paused through AsyncQueue' : 'created through AsyncQueue',
            },
            memo: { [SCHEDULE_MEMO_KEY]: own },
          }),
        { sizeField: 'task.payload' },
      )
      .catch((err: unknown) => {
        if (err instanceof ScheduleAlreadyRunning) throw new ScheduleExistsError(id);
        throw err;
      });
    // The schedule's limits become the key's now, as a create's do (each run's ask for a slot
    // would otherwise only start a limiter the key does not have yet).
    if (task.flowControl !== undefined) {
      await this.flowControl.configure(task.flowControl.key, { limits: task.flowControl.limits }, task.flowControl.limits);
    }
    return this.get(id);
  }

  async get(id: string): Promise<ScheduleView> {
    return viewOf(id, await this.describe(id));
  }

  /**
   * A page of Temporal's schedules, ours among them (others in the namespace are left out, so a
   * page may hold fewer than `limit`), each described, by id within the page.
   */
  async list(query: { limit?: number; cursor?: string } = {}): Promise<ScheduleListPage> {
    const page = await this.calls
      .rpc(() =>
        this.calls.client.workflowService.listSchedules({
          namespace: this.options.namespace,
          maximumPageSize: query.limit ?? MAX_SCHEDULES_PER_PAGE,
          nextPageToken: pageToken(this.options.cursorKey, query.cursor),
        }),
      )
      .catch(refuseUnusableCursor(query.cursor));
    const ids = (page.schedules ?? []).flatMap((entry) => {
      const scheduleId = entry.scheduleId ?? '';
      const ours = scheduleId.startsWith(SCHEDULE_ID_PREFIX) && entry.memo?.fields?.[SCHEDULE_MEMO_KEY] !== undefined;
      return ours ? [scheduleId.slice(SCHEDULE_ID_PREFIX.length)] : [];
    });
    const views: ScheduleView[] = [];
    for (let index = 0; index < ids.length; index += DESCRIBE_CONCURRENCY) {
      const batch = await Promise.all(
        ids.slice(index, index + DESCRIBE_CONCURRENCY).map((id) => this.get(id).catch(() => undefined)),
      );
      views.push(...batch.filter((view): view is ScheduleView => view !== undefined));
    }
    return {
      schedules: views.sort((a, b) => a.id.localeCompare(b.id)),
      nextCursor: nextCursor(this.options.cursorKey, page.nextPageToken),
    };
  }

  async pause(id: string): Promise<ScheduleView> {
    await this.describe(id);
    await this.onHandle(id, (handle) => handle.pause('paused through AsyncQueue'));
    return this.get(id);
  }

  async resume(id: string): Promise<ScheduleView> {
    await this.describe(id);
    await this.onHandle(id, (handle) => handle.unpause('resumed through AsyncQueue'));
    return this.get(id);
  }

  /** One run now, whatever the overlap policy says (as the Temporal UI's Trigger does). */
  async trigger(id: string): Promise<ScheduleView> {
    await this.describe(id);
    await this.onHandle(id, (handle) => handle.trigger('ALLOW_ALL'));
    return this.get(id);
  }

  /** Deletes the schedule; tasks it started go on. */
  async delete(id: string): Promise<void> {
    await this.describe(id);
    await this.onHandle(id, (handle) => handle.delete());
  }

  private async describe(id: string): Promise<ScheduleDescription> {
    const description = await this.onHandle(id, (handle) => handle.describe());
    if (description.memo?.[SCHEDULE_MEMO_KEY] === undefined) throw new ScheduleNotFoundError(id);
    return description;
  }

  private async onHandle<T>(id: string, call: (handle: ScheduleHandle) => Promise<T>): Promise<T> {
    const handle = this.calls.client.schedule.getHandle(`${SCHEDULE_ID_PREFIX}${id}`);
    return this.calls.rpc(() =>
      call(handle).catch((err: unknown) => {
        // Inside the call: translated later, a NOT_FOUND not about a task would be a 503.
        if (err instanceof TemporalScheduleNotFound) throw new ScheduleNotFoundError(id);
        throw err;
      }),
    );
  }
}

function viewOf(id: string, description: ScheduleDescription): ScheduleView {
  const own = description.memo![SCHEDULE_MEMO_KEY] as ScheduleMemo;
  const input = description.action.args?.[0] as ScheduledTaskInput;
  const next = description.info.nextActionTimes[0];
  return {
    id,
    ...(own.cron !== undefined ? { cron: own.cron } : { every: own.every! }),
    timezone: own.timezone,
    task: {
      callbackUrl: input.callbackUrl,
      method: input.method ?? DEFAULT_CALLBACK_METHOD,
      ...(input.labels !== undefined ? { labels: input.labels } : {}),
      ...(input.flowControl !== undefined ? { flowControl: flowControlBody(input.flowControl) } : {}),
      ...(input.priority !== undefined ? { priority: input.priority } : {}),
      payload: input.payload,
      webhookUrl: input.webhookUrl,
      retries: input.retries,
      timeout: input.timeoutSeconds,
      headers: input.headers,
    },
    paused: description.state.paused,
    overlap: description.policies.overlap === 'ALLOW_ALL' ? 'allow' : 'skip',
    nextRunAt: description.state.paused || next === undefined ? null : next.toISOString(),
    recentTaskIds: description.info.recentActions.map((action) =>
      action.action.workflow.workflowId.startsWith(WORKFLOW_ID_PREFIX)
        ? action.action.workflow.workflowId.slice(WORKFLOW_ID_PREFIX.length)
        : action.action.workflow.workflowId,
    ),
    createdAt: description.info.createdAt.toISOString(),
  };
}

/** A task's flow control as its create body named it (limits it did not name are null in the input). */
function flowControlBody({ key, limits }: TaskFlowControl): Record<string, string | number> {
  return {
    key,
    ...(limits.parallelism !== null ? { parallelism: limits.parallelism } : {}),
    ...(limits.rate !== null ? { rate: limits.rate, period: limits.period } : {}),
  };
}
