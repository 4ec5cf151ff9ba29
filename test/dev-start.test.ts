/**
 * `npm start` as a user runs it: the embedded dev server (its data in a file), the worker and the
 * API in one command, a task through them, and Ctrl-C from the terminal, which signals the
 * whole process group: a clean exit, with the worker stopped before the server and nothing left
 * running. A closed terminal (SIGHUP) stops it as gracefully; a `kill -9` of it, or a boot that
 * fails after the server started, takes the server (in a process group of its own) with it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../src/dev/dev-server.js';
import { runEntry, type Started } from '../src/dev/entry-points.js';
import { Receiver } from './support/receiver.js';
import { onDevServerOnly } from './support/engine.js';
import { eventually } from './support/eventually.js';
import { statFieldsAfterName } from './support/process-usage.js';
import { TEST_SIGNING_SECRET } from './support/harness.js';
import { sleep } from '../tools/shared/timing.js';

function signalGroup(group: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-group, signal);
  } catch {
    // the group is gone
  }
}

/** The process group of `pid` (field 5 of /proc/<pid>/stat). */
const processGroupOf = (pid: number): number => Number(statFieldsAfterName(pid)[2]);

/** The Temporal dev server `npm start` (process `pid`) runs: its child running `temporal server start-dev`. */
function devServerChild(pid: number): number | undefined {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return children.find((child) => {
    try {
      return readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('start-dev');
    } catch {
      return false; // ended since the listing
    }
  });
}

/**
 * Whether `pid` runs: an exited process whose parent died waits as a zombie until init reaps it,
 * which a container's init may never do.
 */
function running(pid: number): boolean {
  try {
    return statFieldsAfterName(pid)[0] !== 'Z';
  } catch {
    return false; // no /proc entry: gone
  }
}

/** Whether something accepts TCP connections at host:port. */
function accepting(address: string): Promise<boolean> {
  const { hostname, port } = new URL(`tcp://${address}`);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

let receiver: Receiver;
before(async () => {
  receiver = await Receiver.start();
});
after(async () => {
  await receiver.close();
});

/** `npm start` on free ports, its data in a fresh folder, in a process group of its own; once ready. */
async function startNpmStart(): Promise<{ started: Started; group: number; baseUrl: string; temporal: string }> {
  const port = await freePort();
  const started = runEntry(
    'main',
    {
      // 0: free ports, so that the test never meets a developer's own `npm start`.
      ASYNCQUEUE_DEV_SERVER_PORT: '0',
      ASYNCQUEUE_DEV_SERVER_UI_PORT: '0',
      ASYNCQUEUE_DATA_DIR: path.join(tmpdir(), `asyncqueue-dev-start-${randomUUID()}`),
      ASYNCQUEUE_SIGNING_SECRET: TEST_SIGNING_SECRET,
      ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'true',
      PORT: String(port),
      LOG_LEVEL: 'warn',
    },
    [],
    { ownProcessGroup: true },
  );
  const group = started.child.pid!;
  try {
    // Generous: the server starts and the worker bundles the workflows on a loaded 2-core runner.
    const temporal = await eventually(async () => /Temporal:\s+(\S+:\d+),/.exec(started.output())?.[1], {
      what: `npm start to print its addresses: ${started.output()}`,
      timeoutMs: 90_000,
    });
    await eventually(async () => (started.output().includes('Press Ctrl-C to stop.') ? true : undefined), {
      what: `npm start to be ready: ${started.output()}`,
      timeoutMs: 90_000,
    });
    return { started, group, baseUrl: `http://127.0.0.1:${port}`, temporal };
  } catch (err) {
    await cleanUp(started, group);
    throw err;
  }
}

/**
 * After a failed assertion: the server, in a group of its own, goes with a graceful stop of
 * `npm start`; a hung one is killed with its group.
 */
async function cleanUp(started: Started, group: number): Promise<void> {
  if (started.child.exitCode !== null || started.child.signalCode !== null) return;
  started.child.kill('SIGTERM');
  await Promise.race([started.exited, sleep(20_000)]);
  signalGroup(group, 'SIGKILL');
}

describe('npm start', onDevServerOnly('starts an embedded dev server of its own, as `npm start` does'), () => {
  it('runs a task, and on a Ctrl-C to its process group stops the worker before the server and leaves nothing running', async () => {
    const { started, group, baseUrl, temporal } = await startNpmStart();
    try {
      const created = await fetch(`${baseUrl}/v1/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          callbackUrl: receiver.url('/from-npm-start'),
          webhookUrl: receiver.url('/npm-start-hook'),
          payload: { via: 'npm start' },
        }),
      });
      assert.equal(created.status, 202);
      const { id } = (await created.json()) as { id: string };
      const view = await eventually(
        async () => {
          const task = (await (await fetch(`${baseUrl}/v1/tasks/${id}`)).json()) as {
            status: string;
            webhook?: { status: string };
          };
          return task.webhook?.status === 'delivered' ? task : undefined;
        },
        { what: `the task's webhook to be delivered: ${started.output()}` },
      );
      assert.equal(view.status, 'succeeded');
      assert.deepEqual(JSON.parse(receiver.to('/from-npm-start')[0]!.body), { via: 'npm start' });
      // API and worker in one process: the task started eagerly, through the worker's connection.
      const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
      assert.match(metrics, /^asyncqueue_tasks_started_eagerly_total 1$/m);

      // The server is out of the terminal's reach: only AsyncQueue stops it, after the worker.
      const server = devServerChild(group);
      assert.ok(server !== undefined, 'npm start runs no dev server process');
      assert.equal(processGroupOf(group), group);
      assert.notEqual(processGroupOf(server), group, 'the dev server is in the process group a Ctrl-C reaches');

      // What a terminal's Ctrl-C does: SIGINT to every process of the foreground group.
      process.kill(-group, 'SIGINT');
      assert.equal(await started.exited, 0, started.output());
      // Before the server had a group of its own it went down at the same signal, under a worker
      // still telling it that it stopped (the SDK logged the failed call as a warning).
      assert.doesNotMatch(started.output(), /errored during worker shutdown/);
      assert.equal(await accepting(temporal), false, `the dev server still accepts connections at ${temporal}`);
    } finally {
      await cleanUp(started, group);
    }
  });

  it('stops on a closed terminal (SIGHUP) as on Ctrl-C, server included', async () => {
    const { started, group, temporal } = await startNpmStart();
    try {
      // Node's default for SIGHUP would end the process at once (no exit code), leaving the
      // server of its own group running.
      process.kill(group, 'SIGHUP');
      assert.equal(await started.exited, 0, started.output());
      assert.equal(await accepting(temporal), false, `the dev server still accepts connections at ${temporal}`);
    } finally {
      await cleanUp(started, group);
    }
  });

  it('takes its dev server with it when it is killed outright (kill -9)', async () => {
    const { started, group, temporal } = await startNpmStart();
    const server = devServerChild(group);
    try {
      assert.ok(server !== undefined, 'npm start runs no dev server process');
      // No handler of npm start runs: the kernel's parent-death signal (setpriv) stops the server.
      process.kill(group, 'SIGKILL');
      await started.exited;
      await eventually(async () => ((await accepting(temporal)) ? undefined : true), {
        what: `the dev server at ${temporal} to stop accepting connections after npm start was killed`,
        timeoutMs: 15_000,
      });
      await eventually(async () => (running(server) ? undefined : true), {
        what: `the dev server (pid ${server}) to exit after npm start was killed`,
        timeoutMs: 15_000,
      });
    } finally {
      await cleanUp(started, group);
      // Out of the group's reach: a server the kernel did not stop is not left to the next test.
      if (server !== undefined && running(server)) process.kill(server, 'SIGKILL');
    }
  });

  it('takes its dev server with it when the boot fails after the server started', async () => {
    // The API's port is taken: the boot fails at the very end, the dev server long up.
    const busy = createServer().listen(0, '127.0.0.1');
    await once(busy, 'listening');
    const temporalPort = await freePort();
    const started = runEntry(
      'main',
      {
        ASYNCQUEUE_DEV_SERVER_PORT: String(temporalPort),
        ASYNCQUEUE_DEV_SERVER_UI_PORT: '0',
        ASYNCQUEUE_DATA_DIR: path.join(tmpdir(), `asyncqueue-dev-start-${randomUUID()}`),
        ASYNCQUEUE_SIGNING_SECRET: TEST_SIGNING_SECRET,
        PORT: String((busy.address() as AddressInfo).port),
        LOG_LEVEL: 'warn',
      },
      [],
      { ownProcessGroup: true },
    );
    try {
      assert.equal(await started.exited, 1, started.output());
      assert.match(started.output(), /failed to start: .*EADDRINUSE/);
      // Killed from the exiting process's 'exit' handler: gone a moment after it.
      await eventually(async () => ((await accepting(`127.0.0.1:${temporalPort}`)) ? undefined : true), {
        what: `the dev server at 127.0.0.1:${temporalPort} to stop accepting connections`,
        timeoutMs: 10_000,
      });
    } finally {
      await cleanUp(started, started.child.pid!);
      busy.close();
    }
  });
});
