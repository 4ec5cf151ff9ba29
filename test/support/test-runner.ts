/**
 * What `npm test` and `npm run test:cluster` share: which files run, and Node's test runner over
 * them against one Temporal server. Files run in parallel processes, each on its own task queue.
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const testDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The files named on the command line, or every compiled test file. */
export async function testFiles(requested: string[]): Promise<string[]> {
  if (requested.length > 0) return requested;
  return (await readdir(testDir))
    .filter((name) => name.endsWith('.test.js'))
    .sort()
    .map((name) => path.join(testDir, name));
}

/** Runs the files with the extra environment; resolves with the runner's exit code. */
export function runTestFiles(files: string[], env: Record<string, string>): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--test', '--test-reporter=spec', `--test-concurrency=${process.env.TEST_CONCURRENCY ?? '3'}`, ...files],
      { stdio: 'inherit', env: { ...process.env, ...env } },
    );
    // Ctrl-C reaches the test runner too (same process group); the caller stops its server once it ends.
    for (const name of ['SIGINT', 'SIGTERM'] as const) process.on(name, () => child.kill(name));
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
