/**
 * Which loopback ports the cluster listens on. Chosen at the first start (a requested port, or a
 * free one) and kept in the data folder, so a restart comes back on the same addresses: clients
 * keep working, and the membership rows the services left in PostgreSQL point at live peers again.
 */
import { createServer } from 'node:net';
import { ClusterError } from './processes.js';

export const TEMPORAL_SERVICES = ['history', 'matching', 'frontend', 'worker'] as const;
export type TemporalService = (typeof TEMPORAL_SERVICES)[number];

export interface ServicePorts {
  grpc: number;
  membership: number;
  /** Prometheus metrics of this service's process. */
  metrics: number;
}

export interface ClusterPorts {
  postgres: number;
  frontendHttp: number;
  services: Record<TemporalService, ServicePorts>;
  /** null: no Web UI. */
  ui: number | null;
}

/** 0 (or absent) = any free port. */
export interface RequestedPorts {
  postgres?: number;
  frontend?: number;
  ui?: number | null;
}

export async function isFree(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, ip, () => probe.close(() => resolve(true)));
  });
}

/**
 * Ports come from 20000-32767: Temporal's membership table keeps them in a PostgreSQL smallint
 * (a port above 32767 makes the service fail at boot), and Linux hands out ephemeral ports from
 * 32768 up, so outgoing connections never take one of ours between two starts.
 */
const RANGE = { from: 20_000, to: 32_767 };

/** A port nothing listens on now, and none handed out by this allocator before. */
class PortAllocator {
  private readonly taken = new Set<number>();

  constructor(private readonly ip: string) {}

  async free(): Promise<number> {
    for (let tries = 0; tries < 1000; tries++) {
      const port = RANGE.from + Math.floor(Math.random() * (RANGE.to - RANGE.from + 1));
      if (!this.taken.has(port) && (await isFree(this.ip, port))) return this.claim(port);
    }
    throw new ClusterError(`no free port between ${RANGE.from} and ${RANGE.to} on ${this.ip}`);
  }

  /** `wanted` when it is free, else (when `fallback`) a free one; a requested busy port is an error. */
  async pick(what: string, wanted: number | undefined, { requested }: { requested: boolean }): Promise<number> {
    if (wanted === undefined || wanted === 0) return this.free();
    if (!this.taken.has(wanted) && (await isFree(this.ip, wanted))) return this.claim(wanted);
    if (requested) {
      throw new ClusterError(
        `port ${wanted} (${what}) on ${this.ip} is in use: is another cluster, \`npm start\` or a Temporal server running? ` +
          'Stop it, or choose another port (0 = any free one).',
      );
    }
    return this.free();
  }

  private claim(port: number): number {
    this.taken.add(port);
    return port;
  }
}

/**
 * The ports for this start: each requested one (it must be free), else the one the previous start
 * used (when still free), else a free one.
 */
export async function choosePorts(
  ip: string,
  requested: RequestedPorts,
  previous: ClusterPorts | undefined,
): Promise<ClusterPorts> {
  const ports = new PortAllocator(ip);
  const pick = (what: string, asked: number | undefined, before: number | undefined) =>
    asked !== undefined && asked !== 0
      ? ports.pick(what, asked, { requested: true })
      : ports.pick(what, before, { requested: false });

  const postgres = await pick('PostgreSQL', requested.postgres, previous?.postgres);
  const services = {} as Record<TemporalService, ServicePorts>;
  for (const service of TEMPORAL_SERVICES) {
    const before = previous?.services[service];
    services[service] = {
      grpc: await pick(`${service} gRPC`, service === 'frontend' ? requested.frontend : undefined, before?.grpc),
      membership: await pick(`${service} membership`, undefined, before?.membership),
      metrics: await pick(`${service} metrics`, undefined, before?.metrics),
    };
  }
  const frontendHttp = await pick('frontend HTTP', undefined, previous?.frontendHttp);
  const ui = requested.ui === null ? null : await pick('Web UI', requested.ui, previous?.ui ?? undefined);
  return { postgres, frontendHttp, services, ui };
}
