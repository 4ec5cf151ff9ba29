/**
 * `asyncqueue tasks replay|bulk` and `asyncqueue operations get` (main.ts parses the options and
 * maps errors onto exit codes).
 */
import type { AsyncQueue, BulkRequest, Operation, Task } from '../client/index.js';

export const OPERATION_USAGE = `  replay ID [--delay SECONDS] [--retries N] [--timeout SECONDS] [--idempotency-key KEY]
  bulk --action cancel|replay (--id ID... | [--status STATUS] [--label LABEL]...
       [--created-after TIME] [--created-before TIME] [--flow-control-key KEY]) [--idempotency-key KEY]
  list also takes --label LABEL (repeat it: tasks carrying all of them)

       asyncqueue operations get ID`;

export interface OperationOptions {
  action?: string | undefined;
  id?: string[] | undefined;
  status?: string | undefined;
  label?: string[] | undefined;
  'created-after'?: string | undefined;
  'created-before'?: string | undefined;
  'flow-control-key'?: string | undefined;
  delay?: string | undefined;
  retries?: string | undefined;
  timeout?: string | undefined;
  'idempotency-key'?: string | undefined;
}

export interface OperationCommandContext {
  aq: AsyncQueue;
  values: OperationOptions;
  show: (value: unknown, human: () => string) => void;
  usage: (message: string) => Error;
  number: (flag: string, text: string) => number;
}

/** Runs the command when it is one of these; undefined when it is not. */
export async function runOperationCommand(
  context: OperationCommandContext,
  group: string | undefined,
  command: string | undefined,
  id: string | undefined,
): Promise<number | undefined> {
  const { aq, values, show, usage, number } = context;
  const needId = (what: string): string => {
    if (id === undefined) throw usage(`${what} needs an id`);
    return id;
  };
  if (group === 'operations') {
    if (command !== 'get') throw usage('expected: asyncqueue operations get ID');
    const operation = await aq.operations.get(needId('operations get'));
    show(operation, () => describeOperation(operation));
    return 0;
  }
  if (group !== 'tasks') return undefined;
  if (command === 'replay') {
    const replayed = await aq.tasks.replay(
      needId('tasks replay'),
      {
        ...(values.delay !== undefined ? { delay: number('--delay', values.delay) } : {}),
        ...(values.retries !== undefined ? { retries: number('--retries', values.retries) } : {}),
        ...(values.timeout !== undefined ? { timeout: number('--timeout', values.timeout) } : {}),
      },
      values['idempotency-key'] !== undefined ? { idempotencyKey: values['idempotency-key'] } : {},
    );
    show(replayed, () => `${replayed.id}\t${replayed.status}\t${replayed.createdAt}\treplay of ${replayed.replayOf}`);
    return 0;
  }
  if (command === 'bulk') {
    const action = values.action;
    if (action !== 'cancel' && action !== 'replay') throw usage('tasks bulk needs --action cancel or --action replay');
    const request: BulkRequest =
      values.id !== undefined
        ? { action, ids: values.id }
        : {
            action,
            filter: {
              ...(values.status !== undefined ? { status: values.status as Task['status'] } : {}),
              ...(values.label !== undefined ? { label: values.label } : {}),
              ...(values['created-after'] !== undefined ? { createdAfter: values['created-after'] } : {}),
              ...(values['created-before'] !== undefined ? { createdBefore: values['created-before'] } : {}),
              ...(values['flow-control-key'] !== undefined ? { flowControlKey: values['flow-control-key'] } : {}),
            },
          };
    const operation = await aq.tasks.bulk(
      request,
      values['idempotency-key'] !== undefined ? { idempotencyKey: values['idempotency-key'] } : {},
    );
    show(
      operation,
      () => `${operation.id}\t${operation.action}\t${operation.state}\t(asyncqueue operations get ${operation.id})`,
    );
    return 0;
  }
  return undefined;
}

function describeOperation(operation: Operation): string {
  const lines = [
    `id:        ${operation.id}`,
    `action:    ${operation.action}`,
    `state:     ${operation.state}`,
    `matched:   ${operation.matched} (succeeded ${operation.succeeded}, failed ${operation.failed}, skipped ${operation.skipped})`,
    `created:   ${operation.createdAt}`,
    `ended:     ${operation.endedAt ?? '-'}`,
  ];
  if (operation.filter !== undefined) lines.push(`filter:    ${JSON.stringify(operation.filter)}`);
  if (operation.ids !== undefined) lines.push(`ids:       ${operation.ids}`);
  for (const error of operation.errors) lines.push(`error:     ${error.taskId} ${error.code}: ${error.message}`);
  if (operation.error !== undefined) lines.push(`failed:    ${operation.error.code}: ${operation.error.message}`);
  return lines.join('\n');
}
