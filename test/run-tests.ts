/**
 * `npm test`: starts one in-memory Temporal dev server on free ports (installing the CLI first when
 * needed), runs every test file against it with Node's test runner, and stops it.
 * Files run in parallel processes, each on its own task queue; pass file names to run just those.
 */
import { DevServer } from '../src/dev/dev-server.js';
import { runTestFiles, testFiles } from './support/test-runner.js';

async function main(): Promise<number> {
  const files = await testFiles(process.argv.slice(2));

  process.stdout.write('Starting an in-memory Temporal dev server for the tests…\n');
  const server = await DevServer.start({ port: 0, uiPort: null, namespace: 'default' });
  process.stdout.write(`Temporal dev server at ${server.address}\n`);
  try {
    return await runTestFiles(files, { ASYNCQUEUE_TEST_TEMPORAL_ADDRESS: server.address });
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
