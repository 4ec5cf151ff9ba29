/** `asyncqueue flow-control list|get|set|pause|resume`: the limits tasks of one key share. */
import type { AsyncQueue, FlowKey, FlowLimits } from '../client/index.js';

export const FLOW_CONTROL_USAGE = `       asyncqueue flow-control <command> [options]

Flow-control commands:
  list [--limit N [--cursor C]]   every key, or one page of N keys
  get KEY
  set KEY [--parallelism N] [--rate N] [--period SECONDS]
  pause KEY
  resume KEY`;

export interface FlowControlArgs {
  limit?: string | undefined;
  cursor?: string | undefined;
  parallelism?: string | undefined;
  rate?: string | undefined;
  period?: string | undefined;
}

/** The result to show, or a usage message (a string starting with `usage:`) via `fail`. */
export async function runFlowControlCommand(
  aq: AsyncQueue,
  command: string | undefined,
  key: string | undefined,
  args: FlowControlArgs,
  fail: (message: string) => never,
  number: (flag: string, text: string) => number,
): Promise<{ value: unknown; human: string }> {
  const needKey = (): string => key ?? fail(`flow-control ${command} needs a key`);
  switch (command) {
    case 'list': {
      if (args.limit === undefined && args.cursor === undefined) {
        const keys = await aq.flowControl.list();
        return { value: { keys }, human: keys.map(describeKey).join('\n') };
      }
      const page = await aq.flowControl.page({
        ...(args.limit !== undefined ? { limit: number('--limit', args.limit) } : {}),
        ...(args.cursor !== undefined ? { cursor: args.cursor } : {}),
      });
      const next = page.nextCursor !== null ? `\nnext page: --cursor ${page.nextCursor}` : '';
      return { value: page, human: `${page.keys.map(describeKey).join('\n')}${next}` };
    }
    case 'get':
    case 'pause':
    case 'resume': {
      const view = await aq.flowControl[command](needKey());
      return { value: view, human: describeKey(view) };
    }
    case 'set': {
      const limits: FlowLimits = {
        ...(args.parallelism !== undefined ? { parallelism: number('--parallelism', args.parallelism) } : {}),
        ...(args.rate !== undefined ? { rate: number('--rate', args.rate) } : {}),
        ...(args.period !== undefined ? { period: number('--period', args.period) } : {}),
      };
      if (limits.parallelism === undefined && limits.rate === undefined) fail('flow-control set needs --parallelism or --rate');
      const view = await aq.flowControl.set(needKey(), limits);
      return { value: view, human: describeKey(view) };
    }
    default:
      return fail(
        command === undefined ? 'expected: asyncqueue flow-control <command>' : `unknown command: flow-control ${command}`,
      );
  }
}

function describeKey(view: FlowKey): string {
  const limits = [
    view.parallelism !== null ? `parallelism ${view.parallelism}` : undefined,
    view.rate !== null ? `rate ${view.rate}/${view.period} s` : undefined,
  ].filter((part) => part !== undefined);
  return `${view.key}\t${limits.join(', ')}\t${view.paused ? 'paused' : 'active'}\tin flight ${view.inFlight}\twaiting ${view.waiting}`;
}
