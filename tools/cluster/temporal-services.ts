/**
 * The Temporal server as one process per service, as a production cluster runs it: history,
 * matching, frontend and the internal worker each `server … start --service=<name>` with the same
 * configuration and ports of their own. They find each other through the membership table in
 * PostgreSQL; they start one after the other (see below), and the frontend answering its health
 * check with SERVING is when clients can connect.
 */
import { createConnection } from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { TEMPORAL_SERVICES, type ServicePorts, type TemporalService } from './ports.js';
import { ClusterError, ManagedProcess, waitFor } from './processes.js';
import type { ServerConfig } from './server-config.js';

export interface TemporalServices {
  processes: ManagedProcess[];
  frontendAddress: string;
}

export async function startTemporalServices(options: {
  serverBin: string;
  config: ServerConfig;
  logDir: string;
  ip: string;
  ports: Record<TemporalService, ServicePorts>;
  frontendAddress: string;
  timeoutMs?: number;
  /** Called as each process starts (the launcher records it). */
  onStart?: (process: ManagedProcess) => Promise<void>;
  signal?: AbortSignal | undefined;
}): Promise<TemporalServices> {
  const processes: ManagedProcess[] = [];
  try {
    for (const service of TEMPORAL_SERVICES) {
      const started = await ManagedProcess.start({
        name: `temporal ${service}`,
        command: options.serverBin,
        args: [...options.config.globalArgs, 'start', `--service=${service}`],
        env: options.config.env(service),
        logFile: path.join(options.logDir, `temporal-${service}.log`),
      });
      processes.push(started);
      await options.onStart?.(started);
      // One at a time until each has joined (listens on its membership port; the internal worker
      // has no gRPC port): on a new database every process writes the cluster's metadata at boot,
      // and concurrent first writes fail on its primary key.
      const port = options.ports[service].membership;
      await waitFor(`temporal ${service} did not listen on ${options.ip}:${port}`, () => accepts(options.ip, port), {
        timeoutMs: options.timeoutMs ?? 120_000,
        intervalMs: 200,
        alive: processes,
        signal: options.signal,
      });
    }
  } catch (err) {
    await stopTemporalServices({ processes, frontendAddress: options.frontendAddress });
    throw err;
  }
  try {
    await waitFor(
      `the Temporal frontend did not serve on ${options.frontendAddress}`,
      () => frontendServing(options.frontendAddress),
      { timeoutMs: options.timeoutMs ?? 120_000, intervalMs: 500, alive: processes, signal: options.signal },
    );
  } catch (err) {
    await stopTemporalServices({ processes, frontendAddress: options.frontendAddress });
    throw err;
  }
  return { processes, frontendAddress: options.frontendAddress };
}

/**
 * Starts one service again with the spec it was started with (its previous log kept as
 * `*.previous.log`), in its place in `services.processes`, and waits until it has joined (its
 * membership port accepts) and, for the frontend, serves. The old process must have exited.
 */
export async function restartTemporalService(
  services: TemporalServices,
  service: TemporalService,
  options: { ip: string; ports: Record<TemporalService, ServicePorts>; timeoutMs?: number },
): Promise<ManagedProcess> {
  const index = services.processes.findIndex((p) => p.name === `temporal ${service}`);
  const old = services.processes[index];
  if (old === undefined) throw new ClusterError(`no temporal ${service} process in this cluster`);
  if (old.running) throw new ClusterError(`temporal ${service} is still running (pid ${old.pid}); kill it first`);
  const started = await ManagedProcess.start(old.spec);
  services.processes[index] = started;
  const port = options.ports[service].membership;
  const timeoutMs = options.timeoutMs ?? 120_000;
  await waitFor(`temporal ${service} did not listen on ${options.ip}:${port}`, () => accepts(options.ip, port), {
    timeoutMs,
    intervalMs: 100,
    alive: [started],
  });
  if (service === 'frontend') {
    await waitFor(
      `the Temporal frontend did not serve on ${services.frontendAddress}`,
      () => frontendServing(services.frontendAddress),
      {
        timeoutMs,
        intervalMs: 200,
        alive: [started],
      },
    );
  }
  return started;
}

/** SIGTERM to all of them at once (each drains on its own), SIGKILL for any still up after 20 s. */
export async function stopTemporalServices(services: TemporalServices): Promise<void> {
  await Promise.all(services.processes.map((p) => p.stop('SIGTERM', 20_000)));
}

async function frontendServing(address: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 1000 });
  try {
    const response = await connection.withDeadline(Date.now() + 2000, () =>
      connection.healthService.check({ service: 'temporal.api.workflowservice.v1.WorkflowService' }),
    );
    return response.status === 1; // SERVING
  } finally {
    await connection.close();
  }
}

async function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.setTimeout(1000, () => socket.destroy());
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}
