/**
 * The Temporal engine the benchmark runs against: the dev server (the default; its SQLite in a
 * file in a fresh temporary folder, as `npm start` keeps it, or in memory with
 * `--dev-server-store memory`), a production-shaped cluster on PostgreSQL (`--cluster`:
 * tools/cluster/, started in a fresh temporary folder without the UI and stopped at the end), or
 * the server TEMPORAL_ADDRESS names.
 * Each says where its Prometheus metrics are, and which processes are its CPU and memory.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DevServer } from '../../src/dev/dev-server.js';
import { startCluster, type Cluster } from '../cluster/cluster.js';
import { log, now } from './clock.js';
import { round } from './distribution.js';
import type { BenchOptions } from './options.js';
import { childProcesses } from './process-sampler.js';

export interface Engine {
  kind: 'dev-server' | 'cluster' | 'external';
  address: string;
  namespace: string;
  /** For the report's "server" line. */
  description: string;
  /** Sampler groups: 'temporal' (all Temporal processes) and, on the cluster, 'postgres'. */
  processGroups: Record<string, () => number[]>;
  /** Prometheus endpoints whose `service_requests` count the engine's RPCs (empty: not reachable). */
  metricsUrls: string[];
  /** Seconds the engine took to start (0: not ours). */
  startSec: number;
  /** The folder the engine keeps its data in, removed at stop (null: in memory, or not ours). */
  dataDir: string | null;
  stop(): Promise<void>;
}

export async function startEngine(options: BenchOptions): Promise<Engine> {
  const started = now();
  const external = process.env.TEMPORAL_ADDRESS?.trim();
  if (options.cluster) return startClusterEngine(started, options.shards);
  if (external !== undefined && external !== '') {
    log(`using the Temporal server at ${external}`);
    return {
      kind: 'external',
      address: external,
      namespace: process.env.TEMPORAL_NAMESPACE?.trim() || 'default',
      description: `external at ${external} (its CPU, memory and metrics are not measured)`,
      processGroups: {},
      metricsUrls: [],
      startSec: 0,
      dataDir: null,
      stop: async () => undefined,
    };
  }
  const dataDir = options.devServerStore === 'file' ? await mkdtemp(path.join(os.tmpdir(), 'asyncqueue-bench-dev-')) : null;
  const dbFile = dataDir !== null ? path.join(dataDir, 'temporal.db') : undefined;
  log(`starting a Temporal dev server ${dbFile !== undefined ? `with its data in ${dbFile}` : 'in memory'}`);
  const removeData = async (): Promise<void> => {
    if (dataDir !== null) await rm(dataDir, { recursive: true, force: true });
  };
  const server = await DevServer.start({
    port: 0,
    uiPort: null,
    namespace: 'default',
    ...(dbFile !== undefined ? { dbFile } : {}),
  }).catch(async (err: unknown) => {
    await removeData();
    throw err;
  });
  const pid = server.pid;
  // `start-dev` serves /metrics on a free port of its choosing (`--metrics-port`); find it among its sockets.
  const metricsUrl = pid !== undefined ? await findMetricsEndpoint(pid, server.address) : undefined;
  if (metricsUrl === undefined) log("the dev server's /metrics was not found: no RPC counts this run");
  return {
    kind: 'dev-server',
    address: server.address,
    namespace: 'default',
    description:
      `embedded \`temporal server start-dev\` ${dbFile !== undefined ? `with its data in a SQLite file (${dbFile}), as \`npm start\` runs it,` : 'in memory'} ` +
      `at ${server.address} (pid ${pid}; metrics ${metricsUrl ?? 'not found'})`,
    processGroups: pid !== undefined ? { temporal: () => [pid] } : {},
    metricsUrls: metricsUrl !== undefined ? [metricsUrl] : [],
    startSec: round((now() - started) / 1000, 1) ?? 0,
    dataDir,
    stop: async () => {
      await server.stop();
      await removeData();
    },
  };
}

async function startClusterEngine(started: number, historyShards: number | undefined): Promise<Engine> {
  // Its own folder, not inside the bench's temp folder: as root, PostgreSQL runs as `postgres` and
  // must be able to reach it (startCluster makes the root 0755; mkdtemp's parent is 0700).
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'asyncqueue-bench-cluster-'));
  log(`starting a Temporal cluster on PostgreSQL in ${dataDir} (no UI)`);
  const cluster: Cluster = await startCluster({
    dataDir,
    uiPort: null,
    frontendPort: 0,
    postgresPort: 0,
    ...(historyShards !== undefined ? { historyShards } : {}),
    log: (line) => log(`cluster: ${line}`),
  });
  const startSec = round((now() - started) / 1000, 1) ?? 0;
  log(
    `cluster at ${cluster.address} in ${startSec} s: Temporal ${cluster.serverVersion} on ${cluster.postgresVersion}, ${cluster.historyShards} history shards`,
  );
  void cluster.failed.then((err) => log(`CLUSTER FAILURE: ${err.message}`));
  const children = (): Array<{ pid: number; cmdline: string }> => childProcesses(process.pid);
  const temporalPids = (): number[] =>
    children()
      .filter((c) => / start --service=\w+/.test(c.cmdline))
      .map((c) => c.pid);
  const postgresPids = (): number[] => {
    const postmaster = children().find((c) => /\/postgres -D /.test(c.cmdline) && c.cmdline.includes(dataDir));
    return postmaster === undefined ? [] : [postmaster.pid, ...childProcesses(postmaster.pid).map((c) => c.pid)];
  };
  const services = Object.entries(cluster.ports.services);
  return {
    kind: 'cluster',
    address: cluster.address,
    namespace: cluster.namespace,
    description:
      `Temporal cluster ${cluster.serverVersion} on ${cluster.postgresVersion} (tools/cluster; ${cluster.historyShards} history shards; ` +
      `${cluster.services.join(', ')} as separate processes) at ${cluster.address}, data in a fresh ${dataDir}`,
    processGroups: { temporal: temporalPids, postgres: postgresPids },
    metricsUrls: services.map(([, ports]) => `http://127.0.0.1:${ports.metrics}/metrics`),
    startSec,
    dataDir,
    stop: async () => {
      await cluster.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The listening TCP port of `pid` that answers GET /metrics with Prometheus text, if any. */
export async function findMetricsEndpoint(pid: number, grpcAddress: string): Promise<string | undefined> {
  const grpcPort = Number(grpcAddress.split(':').at(-1));
  for (const port of listeningPorts(pid).filter((p) => p !== grpcPort)) {
    const url = `http://127.0.0.1:${port}/metrics`;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      const text = await response.text();
      if (response.status === 200 && /^service_requests\{|^# (HELP|TYPE) /m.test(text)) return url;
    } catch {
      // not HTTP (gRPC, membership)
    }
  }
  return undefined;
}

/** Ports `pid` listens on (its socket inodes matched against /proc/net/tcp and tcp6, state 0A). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (match?.[1] !== undefined) inodes.add(match[1]);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return [];
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] !== '0A' || fields[9] === undefined || !inodes.has(fields[9])) continue;
      const port = parseInt(fields[1]?.split(':')[1] ?? '', 16);
      if (Number.isInteger(port)) ports.add(port);
    }
  }
  return [...ports].sort((a, b) => a - b);
}
