/** What the benchmark ran on, for the report: the machine, the versions, and what else was busy. */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { round } from './distribution.js';
import { REPO_ROOT } from './options.js';

/**
 * The CPUs this process may use, read when the module loads: `--engine-cpus` later pins the bench
 * to the clients' CPUs, and the report describes the machine, not that share of it.
 */
const CPUS_AT_START = os.availableParallelism();

/** Prints the Temporal CLI's path, building it first when missing (see the README). */
const CLI_SCRIPT = path.join(REPO_ROOT, 'scripts', 'temporal-cli.sh');

export interface Machine {
  nproc: number;
  cpuModel: string;
  totalMemoryGiB: number;
  node: string;
  kernel: string;
  temporalCli: string;
  temporalServer: string;
  /** Other processes that looked busy when the bench started (soak tests, test suites, servers). */
  otherActivity: string[];
}

export async function describeMachine(temporalServer: string, ownPids: () => number[]): Promise<Machine> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  let temporalCli = 'unknown';
  try {
    const { stdout } = await promisify(execFile)('bash', [CLI_SCRIPT], { timeout: 15 * 60_000, maxBuffer: 1024 * 1024 });
    const cli = stdout.trim().split('\n').pop() ?? '';
    const version = await promisify(execFile)(cli, ['--version'], { timeout: 30_000 });
    temporalCli = version.stdout.trim();
  } catch (err) {
    temporalCli = `unknown (${(err as Error).message.split('\n')[0]})`;
  }
  return {
    nproc: CPUS_AT_START,
    cpuModel: model,
    totalMemoryGiB: round(os.totalmem() / 1024 ** 3, 1) ?? 0,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    temporalCli,
    temporalServer,
    otherActivity: otherActivity(ownPids()),
  };
}

/**
 * Processes that compete for the CPU: soak tests, test runs (the cluster suite's too), other Temporal
 * servers, cluster services and PostgreSQL servers (not the bench's own), and workers
 * (the soak and the bench by their old single-file names too: an older checkout may be running).
 */
function otherActivity(ownPids: number[]): string[] {
  const own = new Set([process.pid, ...ownPids]);
  // Our own ancestors (npm, a shell, `time`) are not competition.
  let pid = process.ppid;
  for (let depth = 0; depth < 20 && pid > 1; depth++) {
    own.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  const found: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return found;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (own.has(pid)) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    if (
      /soak\.js|run-(?:cluster-)?tests\.js|bench\.js|tools\/(?:soak|bench|cluster)\/main\.js|temporal server|start --service=|postgres -D |worker-main\.js|api-main\.js|dist\/src\/main\.js/.test(
        cmd,
      )
    ) {
      found.push(`pid ${pid}: ${cmd.length > 120 ? `${cmd.slice(0, 117)}...` : cmd}`);
    }
  }
  return found;
}
