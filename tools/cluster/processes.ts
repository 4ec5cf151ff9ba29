/**
 * The cluster's child processes: each writes to a log file of its own and runs in a process group
 * of its own, so a Ctrl-C in the terminal reaches only the launcher, which then stops them in
 * order (Temporal before the database it writes to). Also runs one-shot commands (initdb, the SQL
 * tool) with their output kept for the error message.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import { promisify } from 'node:util';
import { AsyncQueueError } from '../../src/shared/errors.js';

export class ClusterError extends AsyncQueueError {
  readonly code = 'cluster_failed';
}

/** A user to run a program as (PostgreSQL refuses to run as root). */
export interface RunAs {
  uid: number;
  gid: number;
}

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  cwd?: string;
  runAs?: RunAs | undefined;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ManagedProcess {
  readonly exited: Promise<Exit>;
  private exit: Exit | undefined;

  private constructor(
    readonly spec: ProcessSpec,
    private readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      // A spawn that fails (no such binary) emits 'error' and never 'exit'.
      child.once('error', () => {
        this.exit = { code: 127, signal: null };
        resolve(this.exit);
      });
    });
  }

  /** Starts the process; the previous run's log is kept next to the new one as `*.previous.log`. */
  static async start(spec: ProcessSpec): Promise<ManagedProcess> {
    await rename(spec.logFile, spec.logFile.replace(/\.log$/, '.previous.log')).catch(() => undefined);
    const log = openSync(spec.logFile, 'a', 0o644);
    try {
      const child = spawn(spec.command, spec.args, {
        env: spec.env,
        cwd: spec.cwd,
        stdio: ['ignore', log, log],
        detached: true,
        ...(spec.runAs ?? {}),
      });
      return new ManagedProcess(spec, child);
    } finally {
      closeSync(log);
    }
  }

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  describeExit(): string {
    if (this.exit === undefined) return 'running';
    return this.exit.signal !== null ? `killed by ${this.exit.signal}` : `exited with code ${this.exit.code}`;
  }

  /** The last lines of its log, for an error message; JSON log lines shortened to level, message, error. */
  async tail(lines = 12): Promise<string> {
    const text = await readFile(this.spec.logFile, 'utf8').catch(() => '');
    return text.trimEnd().split('\n').slice(-lines).map(shorten).join('\n');
  }

  /** Sends `signal` (e.g. SIGKILL, as `kill -9` does) and waits for the exit; nothing else. */
  async kill(signal: NodeJS.Signals): Promise<Exit> {
    if (this.exit !== undefined) return this.exit;
    this.child.kill(signal);
    return this.exited;
  }

  /** Sends `signal`, then SIGKILL when it has not exited after `graceMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 20_000): Promise<Exit> {
    if (this.exit !== undefined) return this.exit;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }
}

function shorten(line: string): string {
  try {
    const entry = JSON.parse(line) as { level?: string; msg?: string; error?: string };
    if (typeof entry.msg === 'string') return `${entry.level ?? ''} ${entry.msg}${entry.error ? `: ${entry.error}` : ''}`.trim();
  } catch {
    // not JSON: PostgreSQL's or the UI's own format
  }
  return line.length > 400 ? `${line.slice(0, 400)}…` : line;
}

/** Runs a command to its end; its output, or a ClusterError quoting it. */
export async function run(
  what: string,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; runAs?: RunAs | undefined; timeoutMs?: number; cwd?: string } = {},
): Promise<string> {
  try {
    const { stdout, stderr } = await promisify(execFile)(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      maxBuffer: 16 * 1024 * 1024,
      timeout: options.timeoutMs ?? 120_000,
      ...(options.runAs ?? {}),
    });
    return `${stdout}${stderr}`;
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    const output = `${stdout}${stderr}`.trimEnd().split('\n').slice(-20).join('\n');
    throw new ClusterError(`${what} failed: ${(err as Error).message.split('\n')[0]}\n${output}`, { cause: err });
  }
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns true; a ClusterError naming `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  {
    timeoutMs = 60_000,
    intervalMs = 250,
    alive,
    signal,
  }: { timeoutMs?: number; intervalMs?: number; alive?: ManagedProcess[]; signal?: AbortSignal | undefined } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (signal?.aborted) throw new ClusterError('the start was interrupted');
    const dead = alive?.find((p) => !p.running);
    if (dead !== undefined) {
      throw new ClusterError(`${dead.name} ${dead.describeExit()} (log: ${dead.spec.logFile}):\n${await dead.tail()}`);
    }
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err;
    }
    await sleep(intervalMs);
  }
  const reason = lastError instanceof Error ? ` (last error: ${lastError.message.split('\n')[0]})` : '';
  throw new ClusterError(`${what} within ${Math.round(timeoutMs / 1000)} s${reason}`);
}
