/**
 * `startCluster(options)`: a production-shaped Temporal cluster on this machine — PostgreSQL, the
 * four Temporal services as separate processes, the namespace with TaskStatus, and the Web UI —
 * all on 127.0.0.1, everything kept in one data folder. `npm run cluster` (main.ts) and
 * `npm run test:cluster` (test/run-cluster-tests.ts) are its two callers.
 */
import path from 'node:path';
import { serverBinaries, uiBinary } from './binaries.js';
import { DataFolder } from './data-folder.js';
import { setUpNamespace } from './namespace.js';
import { choosePorts, TEMPORAL_SERVICES, type ClusterPorts, type TemporalService } from './ports.js';
import { POSTGRES_USER, startPostgres, stopPostgres, type Postgres } from './postgres.js';
import { ClusterError, type Exit, type ManagedProcess } from './processes.js';
import { migrateDatabases } from './schema.js';
import { dynamicConfigFile, prepareServerConfig, type DynamicConfigValue } from './server-config.js';
import {
  restartTemporalService,
  startTemporalServices,
  stopTemporalServices,
  type TemporalServices,
} from './temporal-services.js';
import { startUi } from './ui.js';

export interface ClusterOptions {
  /** Everything the cluster keeps: PostgreSQL's data, config, logs. Reused when it exists. */
  dataDir: string;
  namespace?: string;
  /** Retention of a namespace this start creates (default 7 days). */
  retentionDays?: number;
  /** Fixed when the data folder is first used (default 8). */
  historyShards?: number;
  /** Frontend gRPC port; 0 or absent = the previous start's, else any free one. */
  frontendPort?: number;
  postgresPort?: number;
  /** null = no Web UI; 0 or absent = the previous start's port, else any free one. */
  uiPort?: number | null;
  /** Keys added to deploy/temporal-dynamicconfig.yaml for this cluster. */
  dynamicConfig?: Record<string, DynamicConfigValue>;
  /** Extra PostgreSQL settings (`-c name=value`). */
  postgresSettings?: Record<string, string>;
  /** The Temporal services' log level (default info; their logs go to files). */
  logLevel?: string;
  /** Progress lines; default: stderr. */
  log?: (line: string) => void;
  /** Aborts a start in progress: what started is stopped, and startCluster rejects. */
  signal?: AbortSignal;
}

export interface Cluster {
  /** The frontend's gRPC address, for TEMPORAL_ADDRESS. */
  address: string;
  namespace: string;
  serverVersion: string;
  postgresVersion: string;
  historyShards: number;
  services: readonly string[];
  ports: ClusterPorts;
  uiUrl: string | null;
  /** Why there is no UI, when one was asked for. */
  uiSkipped: string | undefined;
  dataDir: string;
  logDir: string;
  /** Settles when one of the cluster's processes exits on its own, saying which and why. */
  failed: Promise<ClusterError>;
  stop(): Promise<void>;
  /**
   * Fault injection (test/cluster-faults.test.ts): sends `signal` to one Temporal service's process
   * or PostgreSQL's (`'SIGKILL'` is `kill -9`; PostgreSQL's fast shutdown is `'SIGINT'`) and waits
   * for it to exit. An exit asked for is not a failure.
   */
  kill(service: TemporalService | 'postgres', signal: NodeJS.Signals): Promise<Exit>;
  /**
   * Starts a killed process again, as it was started, on the same ports and data; resolves once
   * it is back (a Temporal service has joined, the frontend serves, PostgreSQL accepts connections).
   */
  restart(service: TemporalService | 'postgres'): Promise<void>;
  /** `kill('postgres', 'SIGINT')` (fast shutdown, data kept), then `restart('postgres')`. */
  restartPostgres(): Promise<void>;
}

const DEFAULT_SHARDS = 8;
const IP = '127.0.0.1';

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const log = options.log ?? ((line: string) => process.stderr.write(`cluster: ${line}\n`));
  const folder = new DataFolder(path.resolve(options.dataDir));
  await folder.create();
  await folder.lock();

  let postgres: Postgres | undefined;
  let temporal: TemporalServices | undefined;
  const starting: ManagedProcess[] = [];
  let ui: ManagedProcess | undefined;
  let stopping = false;
  /** Processes stopped on purpose by kill() or restartPostgres(): their exits are not failures. */
  const intended = new Set<ManagedProcess>();
  let reportFailure: (err: ClusterError) => void = () => undefined;
  const failed = new Promise<ClusterError>((resolve) => (reportFailure = resolve));
  const watch = (p: ManagedProcess) =>
    void p.exited.then(async () => {
      if (stopping || intended.has(p)) return;
      reportFailure(new ClusterError(`${p.name} ${p.describeExit()} (log: ${p.spec.logFile}):\n${await p.tail()}`));
    });
  const stopAll = async () => {
    stopping = true;
    await ui?.stop('SIGTERM', 5000);
    if (temporal !== undefined) await stopTemporalServices(temporal);
    if (postgres !== undefined) await stopPostgres(postgres);
    await folder.unlock();
  };
  const record = () =>
    folder.recordProcesses(
      [postgres?.process, ...(temporal?.processes ?? starting), ui].flatMap((p) =>
        p === undefined ? [] : [{ name: p.name, pid: p.pid }],
      ),
    );

  try {
    const binaries = await serverBinaries();
    const previous = await folder.readState();
    const historyShards = previous?.historyShards ?? options.historyShards ?? DEFAULT_SHARDS;
    if (options.historyShards !== undefined && options.historyShards !== historyShards) {
      throw new ClusterError(
        `${folder.root} holds a cluster with ${historyShards} history shards; the count is fixed at creation. ` +
          `Use another data folder for ${options.historyShards} shards.`,
      );
    }
    const uiServer = options.uiPort === null ? { reason: 'not asked for' } : await uiBinary();
    const ports = await choosePorts(
      IP,
      { postgres: options.postgresPort, frontend: options.frontendPort, ui: 'path' in uiServer ? options.uiPort : null },
      previous?.ports,
    );
    await folder.writeState({ serverVersion: binaries.version, historyShards, ports });

    const password = await folder.postgresPassword();
    const postgresOptions = {
      dataDir: folder.postgresDir,
      port: ports.postgres,
      password,
      logFile: path.join(folder.logDir, 'postgres.log'),
      settings: options.postgresSettings ?? {},
      log,
    };
    postgres = await startPostgres({ ...postgresOptions, signal: options.signal });
    await record();
    const schemaVersions = await migrateDatabases({
      sqlTool: binaries.sql,
      schemaDir: binaries.schema,
      port: ports.postgres,
      user: POSTGRES_USER,
      password,
      log,
    });
    log(
      `databases ready: ${Object.entries(schemaVersions)
        .map(([db, v]) => `${db} (schema ${v})`)
        .join(', ')}`,
    );

    const config = await prepareServerConfig(binaries.server, folder.temporalConfigDir, {
      ip: IP,
      ports,
      historyShards,
      postgres: { user: POSTGRES_USER, password },
      logLevel: options.logLevel ?? 'info',
      dynamicConfigFile: await dynamicConfigFile(folder.temporalConfigDir, options.dynamicConfig ?? {}),
    });
    const address = `${IP}:${ports.services.frontend.grpc}`;
    log(`starting Temporal ${binaries.version}: ${TEMPORAL_SERVICES.join(', ')} (${historyShards} history shards)`);
    temporal = await startTemporalServices({
      serverBin: binaries.server,
      config,
      logDir: folder.logDir,
      ip: IP,
      ports: ports.services,
      signal: options.signal,
      frontendAddress: address,
      onStart: async (p) => {
        starting.push(p);
        await record();
      },
    });
    await record();

    const namespace = options.namespace ?? 'default';
    await setUpNamespace(address, namespace, options.retentionDays ?? 7, log, options.signal);

    let uiUrl: string | null = null;
    let uiSkipped = 'reason' in uiServer && options.uiPort !== null ? uiServer.reason : undefined;
    if ('path' in uiServer && ports.ui !== null) {
      try {
        const started = await startUi({
          uiBin: uiServer.path,
          configDir: folder.uiConfigDir,
          logFile: path.join(folder.logDir, 'ui.log'),
          ip: IP,
          port: ports.ui,
          frontendAddress: address,
          namespace,
          signal: options.signal,
        });
        ui = started.process;
        uiUrl = started.url;
        await record();
      } catch (err) {
        uiSkipped = (err as Error).message;
      }
    }

    for (const p of [postgres.process, ...temporal.processes, ...(ui === undefined ? [] : [ui])]) watch(p);
    const services = temporal;
    const serviceProcess = (service: TemporalService) => {
      const p = services.processes.find((candidate) => candidate.name === `temporal ${service}`);
      if (p === undefined) throw new ClusterError(`no temporal ${service} process in this cluster`);
      return p;
    };
    const kill: Cluster['kill'] = async (service, signal) => {
      const p = service === 'postgres' ? postgres!.process : serviceProcess(service);
      intended.add(p);
      return p.kill(signal);
    };
    const restart: Cluster['restart'] = async (service) => {
      if (service === 'postgres') {
        if (postgres!.process.running) throw new ClusterError('PostgreSQL is still running; kill it first');
        postgres = await startPostgres(postgresOptions);
        watch(postgres.process);
      } else {
        watch(await restartTemporalService(services, service, { ip: IP, ports: ports.services }));
      }
      await record();
    };
    let stopped: Promise<void> | undefined;
    return {
      address,
      namespace,
      serverVersion: binaries.version,
      postgresVersion: postgres.version,
      historyShards,
      services: TEMPORAL_SERVICES,
      ports,
      uiUrl,
      uiSkipped,
      dataDir: folder.root,
      logDir: folder.logDir,
      // Only exits nobody asked for: a stop() in progress is not a failure.
      failed: failed.then((err) => (stopping ? new Promise<never>(() => undefined) : err)),
      stop: () => (stopped ??= stopAll()),
      kill,
      restart,
      async restartPostgres() {
        await kill('postgres', 'SIGINT');
        await restart('postgres');
      },
    };
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}

/** The addresses, one per line, as `npm run cluster` prints them. */
export function describeCluster(cluster: Cluster): string {
  const { ports } = cluster;
  const line = (label: string, value: string) => `  ${label.padEnd(22)} ${value}`;
  return [
    `Temporal ${cluster.serverVersion} on ${cluster.postgresVersion}, ${cluster.historyShards} history shards, namespace "${cluster.namespace}"`,
    line('frontend gRPC', cluster.address),
    line('frontend HTTP', `${IP}:${ports.frontendHttp}`),
    ...TEMPORAL_SERVICES.map((service) => {
      const p = ports.services[service];
      // The internal worker serves no gRPC: it is a client of the frontend.
      const grpc = service === 'worker' ? 'no gRPC' : `gRPC ${IP}:${p.grpc}`;
      return line(service, `${grpc.padEnd(20)} membership ${IP}:${p.membership}  metrics http://${IP}:${p.metrics}/metrics`);
    }),
    line('PostgreSQL', `${IP}:${ports.postgres} (user ${POSTGRES_USER}, databases temporal and temporal_visibility)`),
    line('Web UI', cluster.uiUrl ?? `none (${cluster.uiSkipped ?? 'not asked for'})`),
    line('data', cluster.dataDir),
    line('logs', cluster.logDir),
  ].join('\n');
}
