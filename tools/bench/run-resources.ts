/**
 * Everything the benchmark starts, in one place, so that the normal end, Ctrl-C and a crash all
 * tear down the same way and no child process or Temporal server outlives the run.
 */
import { rm } from 'node:fs/promises';
import type { Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { Started } from '../../src/dev/entry-points.js';
import { teardownStep } from '../shared/teardown.js';
import type { ApiClient } from './api-client.js';
import { stopChild } from './children.js';
import { log } from './clock.js';
import type { Engine } from './engine.js';
import type { Endpoint } from './receivers.js';

/** Filled in as the run starts things; read by the teardown. */
export const resources: {
  /** The dev server or the cluster the bench started (or an external server: nothing to stop). */
  engine?: Engine;
  apis: Started[];
  workers: Started[];
  endpoints: Endpoint[];
  apiClients: ApiClient[];
  baselineWorker?: { worker: Worker; running: Promise<void> };
  nativeConnection?: NativeConnection;
  clientConnection?: Connection;
  tmpDir?: string;
  serverStopped?: boolean;
} = { apis: [], workers: [], endpoints: [], apiClients: [] };
let cleaning: Promise<void> | undefined;

/** The baseline's connections, closed before its engine stops (a fresh engine per target). */
export async function closeBaselineConnections(): Promise<void> {
  const { nativeConnection, clientConnection } = resources;
  resources.nativeConnection = undefined;
  resources.clientConnection = undefined;
  await nativeConnection?.close();
  await clientConnection?.close();
}

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const step = (what: string, action: () => Promise<unknown>, timeoutMs?: number): Promise<void> =>
      teardownStep(log, what, action, timeoutMs);
    const r = resources;
    await step('API', () => Promise.all(r.apis.map(stopChild)));
    await step('worker', () => Promise.all(r.workers.map(stopChild)));
    if (r.baselineWorker !== undefined) {
      const { worker, running } = r.baselineWorker;
      await step('baseline worker', async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      });
    }
    if (r.nativeConnection !== undefined) await step('worker connection', () => r.nativeConnection!.close());
    if (r.clientConnection !== undefined) await step('client connection', () => r.clientConnection!.close());
    await step('HTTP pools', () => Promise.all(r.apiClients.map((client) => client.close())));
    await step('receivers', () => Promise.all(r.endpoints.map((endpoint) => endpoint.close())));
    if (r.engine !== undefined) {
      // A cluster stops four services (20 s grace each, at once) and then PostgreSQL: more than a step's 20 s.
      const cluster = r.engine.kind === 'cluster';
      await step(cluster ? 'Temporal cluster' : 'Temporal dev server', () => r.engine!.stop(), cluster ? 90_000 : undefined);
      r.serverStopped = true;
    }
    if (r.tmpDir !== undefined) await step('temp folder', () => rm(r.tmpDir!, { recursive: true, force: true }));
  })();
  return cleaning;
}

/** Last resort on an abnormal exit: no child outlives the bench. */
process.on('exit', () => {
  const alive = (s: Started | undefined): number | undefined =>
    s !== undefined && s.child.exitCode === null && s.child.signalCode === null ? s.child.pid : undefined;
  const enginePids = resources.serverStopped
    ? []
    : Object.values(resources.engine?.processGroups ?? {}).flatMap((pids) => pids());
  for (const pid of [...resources.apis.map(alive), ...resources.workers.map(alive), ...enginePids]) {
    if (pid === undefined) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});
