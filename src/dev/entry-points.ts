/**
 * Runs AsyncQueue's entry points (`npm run api`, `npm run worker`, `npm start`) as real child
 * processes: the fault tests and the soak kill them, the benchmark measures them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface Started {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** Sends the signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `nodeArgs`: flags for node itself (the benchmark's `--cpu-prof`, which NODE_OPTIONS refuses). */
const ENTRY_POINTS = { 'api-main': 'api/main', 'worker-main': 'worker/main', main: 'dev/main' } as const;

/**
 * `ownProcessGroup`: the child leads a process group of its own, so that a test can signal the
 * whole group as a terminal's Ctrl-C does (`process.kill(-child.pid, 'SIGINT')`).
 */
export function runEntry(
  name: keyof typeof ENTRY_POINTS,
  env: Record<string, string>,
  nodeArgs: string[] = [],
  { ownProcessGroup = false }: { ownProcessGroup?: boolean } = {},
): Started {
  const file = fileURLToPath(new URL(`../${ENTRY_POINTS[name]}.js`, import.meta.url));
  const child = spawn(process.execPath, [...nodeArgs, file], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    detached: ownProcessGroup,
  });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
