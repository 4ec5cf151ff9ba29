/**
 * The soak's command line: how long and how fast it loads, how long it may drain, how many workers,
 * and the seed that replays one run's task mix and fault timings. Checked once, here.
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

export interface SoakOptions {
  minutes: number;
  rate: number;
  drainMinutes: number;
  workers: number;
  seed: number;
  out: string;
  /** Run on a Temporal cluster of the soak's own (tools/cluster) instead of the dev server. */
  cluster: boolean;
}

const USAGE = `usage: node dist/tools/soak/main.js [--minutes 10] [--rate 4] [--drain-minutes 5] [--workers 2] [--seed N] [--out file.json] [--cluster]

  --cluster   run on a Temporal cluster on PostgreSQL started for the run (tools/cluster; fresh temp
              folder, no UI, stopped at the end) instead of the dev server; its faults: kill -9 of
              history and frontend in turn, and one PostgreSQL restart, besides the worker faults`;

export function parseOptions(argv: string[]): SoakOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string', default: '10' },
      rate: { type: 'string', default: '4' },
      'drain-minutes': { type: 'string', default: '5' },
      workers: { type: 'string', default: '2' },
      seed: { type: 'string' },
      out: { type: 'string' },
      cluster: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const number = (name: string, raw: string | undefined, min: number, max: number): number => {
    const value = Number(raw);
    if (raw === undefined || !Number.isFinite(value) || value < min || value > max) {
      throw new Error(`--${name} must be a number from ${min} to ${max}, got "${raw}"\n${USAGE}`);
    }
    return value;
  };
  const seed =
    values.seed !== undefined ? Math.floor(number('seed', values.seed, 0, 2 ** 32 - 1)) : randomBytes(4).readUInt32BE(0);
  return {
    minutes: number('minutes', values.minutes, 0.1, 24 * 60),
    // Modest by default: two cores carry the dev server (or the cluster), two workers, the API and the receiver.
    rate: number('rate', values.rate, 0.1, 50),
    drainMinutes: number('drain-minutes', values['drain-minutes'], 0.5, 60),
    workers: Math.floor(number('workers', values.workers, 1, 8)),
    seed,
    // Never litter the repository: without --out the report goes to the temp folder.
    out: path.resolve(values.out ?? path.join(tmpdir(), `asyncqueue-soak-${seed}-${Date.now()}.json`)),
    cluster: values.cluster,
  };
}
