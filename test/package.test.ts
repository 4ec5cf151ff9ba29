/**
 * The published package as a user gets it: `npm pack`, install the tarball into a fresh ESM
 * project, then `import { AsyncQueue } from 'asyncqueue/client'` type-checks and runs against the
 * service, and `npx asyncqueue` works.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Receiver } from './support/receiver.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');

let harness: Harness;
let receiver: Receiver;
let project: string;

before(async () => {
  harness = await startHarness();
  receiver = await Receiver.start();
  project = await mkdtemp(path.join(tmpdir(), 'asyncqueue-consumer-'));
  // --ignore-scripts: `prepack` would rebuild; the suite already built dist/.
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', project, '--json'], { cwd: repo });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--omit=dev', path.join(project, filename)], {
    cwd: project,
    timeout: 5 * 60_000,
  });
});

after(async () => {
  await harness.close();
  await receiver.close();
  await stopOwnServer();
  await rm(project, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('installs light: the client, the CLI and what they need, none of the server', async () => {
    // Optional peers are listed by `npm ls` as unmet: what counts is what landed in node_modules.
    const installed = async (name: string) =>
      access(path.join(project, 'node_modules', name)).then(
        () => true,
        () => false,
      );
    for (const server of [
      'fastify',
      '@temporalio/worker',
      '@temporalio/core-bridge',
      '@temporalio/client',
      'undici',
      'pino',
      'prom-client',
    ]) {
      assert.equal(await installed(server), false, `installing the client pulled in ${server}`);
    }
    assert.equal(await installed('standardwebhooks'), true);
  });

  it('imports asyncqueue/client as ESM, with types, and talks to the service', async () => {
    const source = `
import { AsyncQueue, AsyncQueueApiError, verifyRequest, type Task } from 'asyncqueue/client';

// No @types/node in this project: the SDK's own types must not need them.
declare const process: { env: Record<string, string | undefined> };

const aq = new AsyncQueue({ baseUrl: process.env.AQ_URL!, apiKey: undefined });
const created = await aq.tasks.create({
  callbackUrl: process.env.AQ_CALLBACK!,
  payload: { jobId: 'from-tarball' },
  retries: 3,
  timeout: 120,
});
const task: Task = await aq.tasks.wait(created.id, { timeoutMs: 20_000, intervalMs: 100 });
// @ts-expect-error retries must be a number: the types come from the API's schemas
void aq.tasks.create({ callbackUrl: 'https://x.example/', retries: 'three' }).catch(() => undefined);
console.log(JSON.stringify({ status: task.status, isError: new AsyncQueueApiError(400, 'x', 'y') instanceof Error, verify: typeof verifyRequest }));
`;
    await writeFile(path.join(project, 'consumer.ts'), source);
    await writeFile(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: false,
          types: [],
          lib: ['ES2022', 'DOM'],
        },
        files: ['consumer.ts'],
      }),
    );
    await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project });
    const { stdout } = await run(process.execPath, ['consumer.js'], {
      cwd: project,
      env: { ...process.env, AQ_URL: harness.baseUrl, AQ_CALLBACK: receiver.url('/from-tarball') },
    });
    assert.deepEqual(JSON.parse(stdout), { status: 'succeeded', isError: true, verify: 'function' });
    assert.deepEqual(JSON.parse(receiver.to('/from-tarball')[0]!.body), { jobId: 'from-tarball' });
  });

  it('runs npx asyncqueue', async () => {
    const { stdout } = await run('npx', ['--no-install', 'asyncqueue', 'tasks', 'list', '--limit', '1', '--json'], {
      cwd: project,
      env: { ...process.env, ASYNCQUEUE_URL: harness.baseUrl },
    });
    assert.ok(Array.isArray((JSON.parse(stdout) as { tasks: unknown[] }).tasks));
  });
});
