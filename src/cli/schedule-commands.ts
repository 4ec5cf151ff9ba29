/** `asyncqueue schedules create|list|get|pause|resume|trigger|delete` (main.ts parses the options). */
import type { AsyncQueue, CreateScheduleInput, CreateTaskInput, Schedule } from '../client/index.js';

export const SCHEDULE_USAGE = `  schedules create (--cron "M H DoM Mon DoW" [--timezone ZONE] | --every SECONDS) --callback-url URL
         [task options as for tasks create, without --delay] [--id ID] [--paused] [--overlap skip|allow]
  schedules list [--limit N [--cursor C]]   every schedule, or one page of Temporal's N
  schedules get|pause|resume|trigger|delete ID`;

export interface ScheduleOptions {
  id?: string | undefined;
  cron?: string | undefined;
  every?: number | undefined;
  timezone?: string | undefined;
  paused: boolean;
  overlap?: string | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
}

/** What a command prints: the JSON value, or the human form. */
export type Show = (value: unknown, human: () => string) => void;

export async function runScheduleCommand(
  aq: AsyncQueue,
  command: string,
  id: string | undefined,
  options: ScheduleOptions,
  task: () => CreateTaskInput,
  show: Show,
  usage: (message: string) => Error,
): Promise<void> {
  const needId = (): string => {
    if (id === undefined) throw usage(`schedules ${command} needs a schedule id`);
    return id;
  };
  switch (command) {
    case 'create': {
      if (options.overlap !== undefined && options.overlap !== 'skip' && options.overlap !== 'allow') {
        throw usage('--overlap must be skip or allow');
      }
      const { delay: _delay, ...body } = task();
      const input: CreateScheduleInput = {
        task: body,
        ...(options.id !== undefined ? { id: options.id } : {}),
        ...(options.cron !== undefined ? { cron: options.cron } : {}),
        ...(options.every !== undefined ? { every: options.every } : {}),
        ...(options.timezone !== undefined ? { timezone: options.timezone } : {}),
        ...(options.paused ? { paused: true } : {}),
        ...(options.overlap !== undefined ? { overlap: options.overlap as 'skip' | 'allow' } : {}),
      };
      const schedule = await aq.schedules.create(input);
      show(schedule, () => describeSchedule(schedule));
      return;
    }
    case 'list': {
      if (options.limit === undefined && options.cursor === undefined) {
        const schedules = await aq.schedules.list();
        show({ schedules }, () => schedules.map(listLine).join('\n'));
        return;
      }
      const page = await aq.schedules.page({
        ...(options.limit !== undefined ? { limit: options.limit } : {}),
        ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
      });
      const next = page.nextCursor !== null ? `\nnext page: --cursor ${page.nextCursor}` : '';
      show(page, () => `${page.schedules.map(listLine).join('\n')}${next}`);
      return;
    }
    case 'get':
    case 'pause':
    case 'resume':
    case 'trigger': {
      const schedule = await aq.schedules[command](needId());
      show(schedule, () => describeSchedule(schedule));
      return;
    }
    case 'delete': {
      const scheduleId = needId();
      await aq.schedules.delete(scheduleId);
      show({ deleted: scheduleId }, () => `deleted: ${scheduleId}`);
      return;
    }
    default:
      throw usage(`unknown command: schedules ${command}`);
  }
}

function when(schedule: Schedule): string {
  return schedule.cron !== undefined ? `cron "${schedule.cron}" ${schedule.timezone}` : `every ${schedule.every} s`;
}

function listLine(schedule: Schedule): string {
  return `${schedule.id}\t${when(schedule)}\t${schedule.paused ? 'paused' : `next ${schedule.nextRunAt ?? '-'}`}\t${schedule.task.callbackUrl}`;
}

function describeSchedule(schedule: Schedule): string {
  return [
    `id:        ${schedule.id}`,
    `runs:      ${when(schedule)} (overlap ${schedule.overlap})`,
    `state:     ${schedule.paused ? 'paused' : 'active'}`,
    `next run:  ${schedule.nextRunAt ?? '-'}`,
    `callback:  ${schedule.task.callbackUrl}`,
    `recent:    ${schedule.recentTaskIds.join(', ') || '-'}`,
  ].join('\n');
}
