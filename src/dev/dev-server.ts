/**
 * The embedded Temporal dev server (`temporal server start-dev`): SQLite, one process, Web UI.
 * `npm start` keeps its data in a file so tasks survive a restart; the tests run it in memory.
 * The CLI binary comes from scripts/temporal-cli.sh, which installs it into a cache when missing.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../workflows/task-contract.js';
import { AsyncQueueError } from '../shared/errors.js';

const CLI_SCRIPT = fileURLToPath(new URL('../../../scripts/temporal-cli.sh', import.meta.url));

export class DevServerError extends AsyncQueueError {
  readonly code = 'dev_server_failed';
}

export interface DevServerOptions {
  ip?: string;
  /** 0 picks a free port. */
  port: number;
  /** null runs headless (no Web UI); 0 picks a free port. */
  uiPort: number | null;
  /** SQLite file; undefined keeps everything in memory. */
  dbFile?: string;
  namespace: string;
  /** Register the project's search attributes at start (default true). */
  registerSearchAttributes?: boolean;
  /** Where the server's own log lines go; default: discarded. */
  log?: (line: string) => void;
  startTimeoutMs?: number;
  /**
   * Run the server in a process group of its own (`npm start`): a terminal's Ctrl-C then reaches
   * only AsyncQueue, which stops the worker first and the server last, instead of the server
   * going down at once under a worker still shutting down. The server is then killed if this
   * process exits without stopping it (a forced exit, a failed boot), as the group's signal
   * would have. (Killed outright, `kill -9`, no handler runs: see parentDeathWrapper.)
   */
  ownProcessGroup?: boolean;
}

/**
 * Dynamic config for a one-process dev server, each value measured with `npm run bench` at 20
 * tasks/s on 2 cores (README, "Performance").
 */
const DYNAMIC_CONFIG: Record<string, string> = {
  // The activity a workflow task schedules comes back in that task's answer to the worker that
  // asked for it, instead of through a task-queue round trip: e2e p50 218 -> 106 ms, server CPU
  // per task 44-48 -> 40 ms.
  'system.enableActivityEagerExecution': 'true',
  // One node and a few workers: partitions only add forwarding between them (e2e p50 141 -> 93 ms).
  'matching.numTaskqueueReadPartitions': '1',
  'matching.numTaskqueueWritePartitions': '1',
  // The CLI's dev server rereads search attributes (and, under a lock, the namespace that maps
  // them) from its database on every use, so that ones created a moment ago are usable at once;
  // Temporal says never to run that way in production. Ours are registered when the server starts
  // (--search-attribute), so the cache (a namespace's aliases refreshed every 10 s) serves them.
  'system.forceSearchAttributesCacheRefreshOnRead': 'false',
};

/**
 * The Go runtime's GC target for the server unless GOGC is set. GC was ~8 % of the server's CPU;
 * collecting a quarter as often cut its CPU per task by 3-6 ms, for a larger heap (peak RSS 0.7 ->
 * 1.5 GB over a full in-memory benchmark run). Set GOGC=100 for Go's default.
 */
const DEFAULT_GOGC = '400';

export class DevServer {
  private exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly address: string,
    readonly uiUrl: string | null,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(options: DevServerOptions): Promise<DevServer> {
    const cli = await resolveCli();
    const ip = options.ip ?? '127.0.0.1';
    const port = options.port === 0 ? await freePort(ip) : await assertFree(ip, options.port, 'gRPC');
    const uiPort =
      options.uiPort === null || options.uiPort === 0
        ? options.uiPort === 0
          ? await freePort(ip)
          : null
        : await assertFree(ip, options.uiPort, 'Web UI');
    const args = [
      'server',
      'start-dev',
      '--ip',
      ip,
      '--port',
      String(port),
      '--namespace',
      options.namespace,
      '--log-level',
      'warn',
      ...(options.registerSearchAttributes === false
        ? []
        : SEARCH_ATTRIBUTES.flatMap((attribute) => ['--search-attribute', `${attribute.name}=${attribute.type}`])),
      // One SQLite connection serves every request: WAL lets readers proceed during writes, and a
      // busy timeout turns lock contention into a short wait instead of an error.
      ...['journal_mode=wal', 'synchronous=normal', 'busy_timeout=10000'].flatMap((p) => ['--sqlite-pragma', p]),
      ...Object.entries(DYNAMIC_CONFIG).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${value}`]),
      ...(options.dbFile !== undefined ? ['--db-filename', options.dbFile] : []),
      ...(uiPort === null ? ['--headless'] : ['--ui-ip', ip, '--ui-port', String(uiPort)]),
    ];
    // setpriv sets the signal and execs the CLI: the child is the server itself, same pid.
    const wrapper = await parentDeathWrapper();
    const [command, ...commandArgs] = [...wrapper, cli, ...args];
    const child = spawn(command!, commandArgs, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GOGC: process.env.GOGC ?? DEFAULT_GOGC },
      detached: options.ownProcessGroup === true,
    });
    if (options.ownProcessGroup === true) {
      // 'exit' handlers run synchronously: a signal is all that can be sent from one.
      const killOnExit = (): void => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      };
      process.on('exit', killOnExit);
      child.once('exit', () => process.off('exit', killOnExit));
    }
    const output: string[] = [];
    let dropped = 0;
    const onData = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        // Bounded for a server that runs for days: its first lines and its latest are kept.
        if (output.length >= 200) {
          output.splice(OUTPUT_HEAD_LINES, 1);
          dropped++;
        }
        output.push(line);
        options.log?.(line);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);

    const address = `${ip}:${port}`;
    const server = new DevServer(child, address, uiPort === null ? null : `http://${ip}:${uiPort}`);
    try {
      await waitUntilServing(address, options.namespace, child, options.startTimeoutMs ?? 60_000);
    } catch (err) {
      await server.stop();
      throw new DevServerError(
        `the Temporal dev server did not start: ${(err as Error).message}\n${outputExcerpt(output, dropped)}`,
        {
          cause: err,
        },
      );
    }
    return server;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Kills the server outright (SIGKILL), as a crash would; for fault tests. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

const OUTPUT_HEAD_LINES = 6;

/**
 * What the server printed, for an error: its first lines and its last (`droppedBefore`: lines the
 * bounded buffer already let go from the middle). A Go panic states its cause
 * first and then prints every goroutine's stack, so the last lines alone lose the cause.
 */
export function outputExcerpt(lines: readonly string[], droppedBefore = 0, head = OUTPUT_HEAD_LINES, tail = 14): string {
  if (lines.length <= head + tail && droppedBefore === 0) return lines.join('\n');
  const left = lines.length - head - tail + droppedBefore;
  return [...lines.slice(0, head), `… (${left} lines left out)`, ...lines.slice(-tail)].join('\n');
}

async function resolveCli(): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)('bash', [CLI_SCRIPT], {
      maxBuffer: 1024 * 1024,
      timeout: 15 * 60_000,
    });
    return stdout.trim().split('\n').pop() ?? '';
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new DevServerError(`could not provide the Temporal CLI:\n${stderr}`, { cause: err });
  }
}

let parentDeath: Promise<string[]> | undefined;

/**
 * The server goes when the process that started it dies, however it dies: a `kill -9` of
 * `npm start`, of a test run or of a benchmark runs no handler of ours, and a server left behind
 * keeps its ports and its data file. The kernel can do it (a parent-death signal, prctl(2)), and
 * util-linux's `setpriv` sets one before it execs the CLI: `setpriv --pdeathsig SIGTERM --` when
 * this machine has a setpriv that can (Linux with util-linux 2.33 or later; Debian's is
 * essential), else nothing (macOS): probed once, on `true`. SIGTERM: the server shuts down as on
 * a Ctrl-C, its data file closed cleanly.
 */
function parentDeathWrapper(): Promise<string[]> {
  const wrapper = ['setpriv', '--pdeathsig', 'SIGTERM', '--'];
  parentDeath ??= promisify(execFile)(wrapper[0]!, [...wrapper.slice(1), 'true'], { timeout: 10_000 }).then(
    () => wrapper,
    () => [],
  );
  return parentDeath;
}

export async function freePort(ip = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, ip, () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A busy port would let us mistake another server for ours; say so instead. */
async function assertFree(ip: string, port: number, what: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new DevServerError(
          `port ${port} (${what}) on ${ip} is in use${err.code === 'EADDRINUSE' ? '' : ` (${err.code})`}: ` +
            'is another Temporal dev server or AsyncQueue running? Stop it, or choose other ports with ' +
            'ASYNCQUEUE_DEV_SERVER_PORT / ASYNCQUEUE_DEV_SERVER_UI_PORT.',
        ),
      ),
    );
    probe.listen(port, ip, () => probe.close(() => resolve()));
  });
  return port;
}

async function waitUntilServing(address: string, namespace: string, child: ChildProcess, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.withDeadline(Date.now() + 2000, () => connection.workflowService.describeNamespace({ namespace }));
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  throw new Error(`not reachable at ${address} within ${timeoutMs} ms (${String(lastError)})`);
}
