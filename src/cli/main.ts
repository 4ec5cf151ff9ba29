#!/usr/bin/env node
/**
 * `npx asyncqueue tasks create|get|list|cancel|wait|attempts|replay|bulk`, `operations get`, `schedules …`
 * (schedule-commands.ts) and `flow-control list|get|set|pause|resume` against ASYNCQUEUE_URL with ASYNCQUEUE_API_KEY.
 * Human-readable by default, `--json` for scripts. Exit codes scripts can rely on:
 *   0 done (for `wait`: the task succeeded)   1 the API or the network said no
 *   2 bad usage                               3 `wait`: the task failed
 *   4 `wait`: the task was cancelled          5 `wait`: timed out before the task ended
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { attemptsTable } from './attempts-table.js';
import {
  AsyncQueue,
  AsyncQueueApiError,
  AsyncQueueConnectionError,
  WaitTimeoutError,
  type CreateTaskInput,
  type Task,
} from '../client/index.js';
import { OPERATION_USAGE, runOperationCommand } from './operation-commands.js';
import { SCHEDULE_USAGE, runScheduleCommand } from './schedule-commands.js';
import { FLOW_CONTROL_USAGE, runFlowControlCommand } from './flow-control-command.js';

export const ExitCode = { Ok: 0, Failed: 1, Usage: 2, TaskFailed: 3, TaskCancelled: 4, WaitTimedOut: 5 } as const;

const USAGE = `Usage: asyncqueue tasks|schedules|operations|flow-control <command> [options]

Commands:
  create --callback-url URL [--method POST|PUT|PATCH|GET|DELETE] [--payload JSON] [--webhook-url URL] [--retries N]
         [--timeout SECONDS] [--delay SECONDS] [--header "Name: value"]... [--idempotency-key KEY]
         [--flow-key KEY (--parallelism N | --rate N [--period SECONDS])] [--priority 1-5]
  get ID
  list [--status STATUS] [--label L]... [--schedule-id ID] [--limit N] [--cursor CURSOR] [--all]
  cancel ID [--reason TEXT]
  wait ID [--wait-timeout SECONDS] [--interval SECONDS]
  attempts ID
${OPERATION_USAGE}
${SCHEDULE_USAGE}

${FLOW_CONTROL_USAGE}

Options: --json (machine-readable output), --url URL (default $ASYNCQUEUE_URL or
http://127.0.0.1:3000), --api-key KEY (default $ASYNCQUEUE_API_KEY).
Exit codes: 0 ok (wait: succeeded), 1 API/network error, 2 usage, 3 wait: failed,
4 wait: cancelled, 5 wait: timed out.`;

class UsageError extends Error {}

interface Output {
  write(text: string): void;
  error(text: string): void;
}

const processOutput: Output = {
  write: (text) => process.stdout.write(`${text}\n`),
  error: (text) => process.stderr.write(`${text}\n`),
};

export async function runCli(
  argv: readonly string[],
  env: Record<string, string | undefined> = process.env,
  out: Output = processOutput,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        url: { type: 'string' },
        'api-key': { type: 'string' },
        'callback-url': { type: 'string' },
        method: { type: 'string' },
        payload: { type: 'string' },
        'webhook-url': { type: 'string' },
        retries: { type: 'string' },
        timeout: { type: 'string' },
        delay: { type: 'string' },
        header: { type: 'string', multiple: true },
        'idempotency-key': { type: 'string' },
        status: { type: 'string' },
        limit: { type: 'string' },
        cursor: { type: 'string' },
        all: { type: 'boolean', default: false },
        reason: { type: 'string' },
        'wait-timeout': { type: 'string' },
        interval: { type: 'string' },
        label: { type: 'string', multiple: true },
        action: { type: 'string' },
        id: { type: 'string', multiple: true },
        'created-after': { type: 'string' },
        'created-before': { type: 'string' },
        'flow-control-key': { type: 'string' },
        'schedule-id': { type: 'string' },
        cron: { type: 'string' },
        every: { type: 'string' },
        timezone: { type: 'string' },
        paused: { type: 'boolean', default: false },
        overlap: { type: 'string' },
        'flow-key': { type: 'string' },
        parallelism: { type: 'string' },
        rate: { type: 'string' },
        period: { type: 'string' },
        priority: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    out.error(`${(err as Error).message}\n\n${USAGE}`);
    return ExitCode.Usage;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out.write(USAGE);
    return ExitCode.Ok;
  }
  const [group, command, id] = positionals;
  const aq = new AsyncQueue({
    baseUrl: values.url ?? env.ASYNCQUEUE_URL ?? 'http://127.0.0.1:3000',
    ...((values['api-key'] ?? env.ASYNCQUEUE_API_KEY) !== undefined
      ? { apiKey: (values['api-key'] ?? env.ASYNCQUEUE_API_KEY) as string }
      : {}),
  });
  const show = (value: unknown, human: () => string): void => out.write(values.json ? JSON.stringify(value) : human());

  const taskBody = () => {
    if (values['callback-url'] === undefined) throw new UsageError(`${group} create needs --callback-url`);
    return {
      callbackUrl: values['callback-url'],
      // The API checks the value (a 400 naming `method`); any case is taken here.
      ...(values.method !== undefined ? { method: values.method.toUpperCase() as CreateTaskInput['method'] } : {}),
      ...(values.label !== undefined ? { labels: values.label } : {}),
      ...(values['flow-key'] !== undefined
        ? {
            flowControl: {
              key: values['flow-key'],
              ...(values.parallelism !== undefined ? { parallelism: parseNumber('--parallelism', values.parallelism) } : {}),
              ...(values.rate !== undefined ? { rate: parseNumber('--rate', values.rate) } : {}),
              ...(values.period !== undefined ? { period: parseNumber('--period', values.period) } : {}),
            },
          }
        : {}),
      ...(values.priority !== undefined ? { priority: parseNumber('--priority', values.priority) } : {}),
      ...(values.payload !== undefined ? { payload: parseJson('--payload', values.payload) } : {}),
      ...(values['webhook-url'] !== undefined ? { webhookUrl: values['webhook-url'] } : {}),
      ...(values.retries !== undefined ? { retries: parseNumber('--retries', values.retries) } : {}),
      ...(values.timeout !== undefined ? { timeout: parseNumber('--timeout', values.timeout) } : {}),
      ...(values.delay !== undefined ? { delay: parseNumber('--delay', values.delay) } : {}),
      ...(values.header !== undefined ? { headers: parseHeaders(values.header) } : {}),
    };
  };

  try {
    const handled = await runOperationCommand(
      { aq, values, show, usage: (message) => new UsageError(message), number: parseNumber },
      group,
      command,
      id,
    );
    if (handled !== undefined) return handled;
    if (group === 'schedules' && command !== undefined) {
      await runScheduleCommand(
        aq,
        command,
        id,
        {
          // --id is repeatable for `tasks bulk`; a schedule has one.
          id: values.id?.at(-1),
          cron: values.cron,
          every: values.every !== undefined ? parseNumber('--every', values.every) : undefined,
          timezone: values.timezone,
          paused: values.paused,
          overlap: values.overlap,
          limit: values.limit !== undefined ? parseNumber('--limit', values.limit) : undefined,
          cursor: values.cursor,
        },
        taskBody,
        show,
        (message) => new UsageError(message),
      );
      return ExitCode.Ok;
    }
    if (group === 'flow-control') {
      const fail = (message: string): never => {
        throw new UsageError(message);
      };
      const { value, human } = await runFlowControlCommand(aq, command, id, values, fail, parseNumber);
      show(value, () => human);
      return ExitCode.Ok;
    }
    if (group !== 'tasks' || command === undefined)
      throw new UsageError('expected: asyncqueue tasks|schedules|flow-control|operations <command>');
    const needId = (): string => {
      if (id === undefined) throw new UsageError(`tasks ${command} needs a task id`);
      return id;
    };
    switch (command) {
      case 'create': {
        const created = await aq.tasks.create(
          taskBody(),
          values['idempotency-key'] !== undefined ? { idempotencyKey: values['idempotency-key'] } : {},
        );
        show(created, () => `${created.id}\t${created.status}\t${created.createdAt}`);
        return ExitCode.Ok;
      }
      case 'get': {
        const task = await aq.tasks.get(needId());
        show(task, () => describeTask(task));
        return ExitCode.Ok;
      }
      case 'list': {
        const params = {
          ...(values.status !== undefined ? { status: values.status as Task['status'] } : {}),
          ...(values.label !== undefined ? { label: values.label } : {}),
          ...(values['schedule-id'] !== undefined ? { scheduleId: values['schedule-id'] } : {}),
          ...(values.limit !== undefined ? { limit: parseNumber('--limit', values.limit) } : {}),
          ...(values.cursor !== undefined ? { cursor: values.cursor } : {}),
        };
        if (values.all) {
          const tasks: Task[] = [];
          for await (const task of aq.tasks.list(params)) {
            if (values.json) tasks.push(task);
            else out.write(listLine(task));
          }
          if (values.json) out.write(JSON.stringify({ tasks, nextCursor: null }));
          return ExitCode.Ok;
        }
        const page = await aq.tasks.list(params);
        show(page, () =>
          [...page.tasks.map(listLine), ...(page.nextCursor ? [`next page: --cursor ${page.nextCursor}`] : [])].join('\n'),
        );
        return ExitCode.Ok;
      }
      case 'cancel': {
        const task = await aq.tasks.cancel(needId(), values.reason !== undefined ? { reason: values.reason } : {});
        show(task, () => `cancel requested: ${task.id} (${task.status})`);
        return ExitCode.Ok;
      }
      case 'wait': {
        const task = await aq.tasks.wait(needId(), {
          ...(values['wait-timeout'] !== undefined
            ? { timeoutMs: parseNumber('--wait-timeout', values['wait-timeout']) * 1000 }
            : {}),
          ...(values.interval !== undefined ? { intervalMs: parseNumber('--interval', values.interval) * 1000 } : {}),
        });
        show(task, () => describeTask(task));
        return task.status === 'succeeded'
          ? ExitCode.Ok
          : task.status === 'failed'
            ? ExitCode.TaskFailed
            : ExitCode.TaskCancelled;
      }
      case 'attempts': {
        const attempts = await aq.tasks.attempts(needId());
        show({ attempts }, () => attemptsTable(attempts));
        return ExitCode.Ok;
      }
      default:
        throw new UsageError(`unknown command: tasks ${command}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      out.error(`${err.message}\n\n${USAGE}`);
      return ExitCode.Usage;
    }
    if (err instanceof WaitTimeoutError) {
      out.error(err.message);
      return ExitCode.WaitTimedOut;
    }
    if (err instanceof AsyncQueueApiError || err instanceof AsyncQueueConnectionError) {
      const status = err instanceof AsyncQueueApiError ? err.status : undefined;
      if (values.json)
        out.error(JSON.stringify({ error: { code: err.code, message: err.message, ...(status ? { status } : {}) } }));
      else out.error(`error${status ? ` ${status}` : ''} (${err.code}): ${err.message}`);
      return ExitCode.Failed;
    }
    throw err;
  }
}

function parseJson(flag: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new UsageError(`${flag} must be JSON`);
  }
}

function parseNumber(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new UsageError(`${flag} must be a number`);
  return value;
}

function parseHeaders(lines: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new UsageError(`--header must look like "Name: value", got "${line}"`);
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}

function listLine(task: Task): string {
  const line = `${task.id}\t${task.status.padEnd(9)}\t${task.createdAt}\t${task.callbackUrl}`;
  // The failures page at a glance: why and when each one ended.
  return task.error !== undefined ? `${line}\t${task.error.code}\t${task.endedAt ?? task.updatedAt}` : line;
}

function describeTask(task: Task): string {
  const lines = [
    `id:        ${task.id}`,
    `status:    ${task.status}`,
    `callback:  ${task.method} ${task.callbackUrl}`,
    `attempts:  ${task.attempts} (retries ${task.retries}, timeout ${task.timeout} s)`,
    `created:   ${task.createdAt}`,
    `updated:   ${task.updatedAt}`,
  ];
  if (task.nextAttemptAt !== undefined) lines.push(`next try:  ${task.nextAttemptAt}`);
  if (task.result !== undefined) lines.push(`result:    ${JSON.stringify(task.result)}`);
  if (task.error !== undefined) lines.push(`error:     ${task.error.code}: ${task.error.message}`);
  if (task.webhook !== undefined) lines.push(`webhook:   ${task.webhook.status} after ${task.webhook.attempts} attempt(s)`);
  if (task.flowControl !== undefined) {
    lines.push(`flow key:  ${task.flowControl.key}${task.flowControl.waiting ? ' (waiting for a slot)' : ''}`);
  }
  return lines.join('\n');
}

// Run when executed (`npx asyncqueue …` goes through a symlink), not when imported by the tests.
const invokedAs = process.argv[1] === undefined ? '' : realpathSync(process.argv[1]);
if (invokedAs === fileURLToPath(import.meta.url)) {
  runCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`asyncqueue: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(ExitCode.Failed);
    },
  );
}
