/**
 * The production entry points as real processes: `npm run api` and `npm run worker` against the
 * test server, a task through them, clean exits on SIGTERM, and boot failures that name the cause.
 * Also: search attributes are registered on a cluster that lacks them.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Connection } from '@temporalio/client';
import { DevServer, freePort } from '../src/dev/dev-server.js';
import { getRetentionDays, setRetention } from '../src/dev/retention.js';
import { ensureSearchAttributes } from '../src/shared/search-attributes.js';
import { SEARCH_ATTRIBUTES } from '../workflows/task-contract.js';
import { runEntry } from '../src/dev/entry-points.js';
import { Receiver } from './support/receiver.js';
import { onDevServerOnly } from './support/engine.js';
import { eventually } from './support/eventually.js';
import { TEST_SIGNING_SECRET, stopOwnServer, temporalAddress } from './support/harness.js';

/** The nice values of a process's threads (field 19 of /proc/<pid>/task/<tid>/stat). */
function threadNiceValues(pid: number): Set<number> {
  const values = new Set<number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended between the listing and the read
    }
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    values.add(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return values;
}

let receiver: Receiver;
before(async () => {
  receiver = await Receiver.start();
});
after(async () => {
  await receiver.close();
  await stopOwnServer();
});

describe('npm run api + npm run worker', () => {
  it('run a task end to end as separate processes and exit cleanly on SIGTERM', async () => {
    const port = await freePort();
    const env = {
      TEMPORAL_ADDRESS: await temporalAddress(),
      ASYNCQUEUE_TASK_QUEUE: `processes-${randomUUID()}`,
      ASYNCQUEUE_SIGNING_SECRET: TEST_SIGNING_SECRET,
      ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'true',
      ASYNCQUEUE_DATA_DIR: path.join(tmpdir(), `asyncqueue-processes-${randomUUID()}`),
      PORT: String(port),
      LOG_LEVEL: 'warn',
    };
    // The worker yields the CPU to the API on a shared host when told to.
    const worker = runEntry('worker-main', { ...env, ASYNCQUEUE_WORKER_NICE: '5' });
    const api = runEntry('api-main', env);
    try {
      const baseUrl = `http://127.0.0.1:${port}`;
      // Generous: on a loaded 2-core runner the API boots while the worker bundles the workflows.
      await eventually(async () => ((await fetch(`${baseUrl}/readyz`)).ok ? true : undefined), {
        what: `the API to be ready: ${api.output()}`,
        timeoutMs: 60_000,
      });
      const created = await fetch(`${baseUrl}/v1/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ callbackUrl: receiver.url('/from-processes'), payload: { via: 'processes' } }),
      });
      assert.equal(created.status, 202);
      const { id } = (await created.json()) as { id: string };
      const view = await eventually(
        async () => {
          const task = (await (await fetch(`${baseUrl}/v1/tasks/${id}`)).json()) as { status: string };
          return task.status === 'succeeded' ? task : undefined;
        },
        { what: `the task to succeed: ${worker.output()}` },
      );
      assert.equal(view.status, 'succeeded');
      assert.deepEqual(JSON.parse(receiver.to('/from-processes')[0]!.body), { via: 'processes' });
      // Nice is per thread on Linux: all of them, the SDK's and V8's included, run at the lower priority.
      assert.deepEqual(threadNiceValues(worker.child.pid!), new Set([5]));
      assert.deepEqual(threadNiceValues(api.child.pid!), new Set([0]));
    } finally {
      api.child.kill('SIGTERM');
      worker.child.kill('SIGTERM');
    }
    assert.equal(await api.exited, 0, api.output());
    assert.equal(await worker.exited, 0, worker.output());
  });

  it('fail fast at boot with a message naming the variable', async () => {
    const api = runEntry('api-main', { TEMPORAL_ADDRESS: '127.0.0.1:1', PORT: 'eighty' });
    assert.equal(await api.exited, 1);
    assert.match(api.output(), /PORT: expected a whole number/);
    const exposed = runEntry('api-main', { TEMPORAL_ADDRESS: '127.0.0.1:1', HOST: '0.0.0.0' });
    assert.equal(await exposed.exited, 1);
    assert.match(exposed.output(), /ASYNCQUEUE_API_KEYS: required when HOST/);
  });
});

describe('retention', onDevServerOnly("sets the embedded server's retention, as npm start does"), () => {
  it('is set on the embedded server and read back', async () => {
    const server = await DevServer.start({ port: 0, uiPort: null, namespace: 'default' });
    const connection = await Connection.connect({ address: server.address });
    try {
      await setRetention(connection, 'default', 30);
      assert.equal(await getRetentionDays(connection, 'default'), 30);
    } finally {
      await connection.close();
      await server.stop();
    }
  });
});

describe('search attributes on a cluster', onDevServerOnly('needs a server started without TaskStatus'), () => {
  it('are registered when missing, and left alone when present', async () => {
    const server = await DevServer.start({ port: 0, uiPort: null, namespace: 'default', registerSearchAttributes: false });
    const connection = await Connection.connect({ address: server.address });
    try {
      const names = SEARCH_ATTRIBUTES.map((attribute) => attribute.name);
      assert.deepEqual(await ensureSearchAttributes(connection, 'default'), names);
      const listed = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      for (const name of names) assert.ok(Object.keys(listed.customAttributes ?? {}).includes(name), name);
      assert.deepEqual(await ensureSearchAttributes(connection, 'default'), []);
    } finally {
      await connection.close();
      await server.stop();
    }
  });
});
