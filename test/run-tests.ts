/**
 * `npm test`: starts one in-memory Temporal dev server on free ports (installing the CLI first when
 * needed), runs every test file against it with Node's test runner, and stops it.
 * Files run in parallel processes, each on its own task queue; pass file names to run just those.
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DevServer } from '../src/dev/dev-server.js';

const testDir = path.dirname(fileURLToPath(import.meta.url));

async function main(): Promise<number> {
  const requested = process.argv.slice(2);
  const files =
    requested.length > 0
      ? requested
      : (await readdir(testDir))
          .filter((name) => name.endsWith('.test.js'))
          .sort()
          .map((name) => path.join(testDir, name));

  process.stdout.write('Starting an in-memory Temporal dev server for the tests…\n');
  const server = await DevServer.start({ port: 0, uiPort: null, namespace: 'default' });
  process.stdout.write(`Temporal dev server at ${server.address}\n`);
  try {
    return await new Promise<number>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--test', '--test-reporter=spec', `--test-concurrency=${process.env.TEST_CONCURRENCY ?? '3'}`, ...files],
        { stdio: 'inherit', env: { ...process.env, ASYNCQUEUE_TEST_TEMPORAL_ADDRESS: server.address } },
      );
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    });
  } finally {
    await server.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
