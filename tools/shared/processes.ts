/**
 * Runs AsyncQueue's entry points (`npm run api`, `npm run worker`) as real child processes, so the
 * benchmark can measure them and the soak can kill them. The test suite has the same helper in
 * test/support/processes.ts; tools may not import test/, so this is a copy until both get a
 * shared home.
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
export function runEntry(name: 'api-main' | 'worker-main' | 'main', env: Record<string, string>, nodeArgs: string[] = []): Started {
  const file = fileURLToPath(new URL(`../../src/${name}.js`, import.meta.url));
  const child = spawn(process.execPath, [...nodeArgs, file], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
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
