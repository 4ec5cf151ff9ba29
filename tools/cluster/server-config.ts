/**
 * Fills deploy/temporal-server.yaml.tmpl for one service process. The file is a template the server
 * renders itself from environment variables (the same file docker-compose.yml mounts), so filling
 * it means: copy it where the server looks for it, and give each process the variables. The
 * dynamic config is deploy/temporal-dynamicconfig.yaml, with the caller's extra keys appended in
 * a copy when there are any. Both are checked with the server's own commands before anything
 * starts, so a bad template or key fails here with the server's message.
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterPorts, TemporalService } from './ports.js';
import { ClusterError, run } from './processes.js';

const DEPLOY_DIR = fileURLToPath(new URL('../../../deploy/', import.meta.url));
export const SERVER_CONFIG_TEMPLATE = path.join(DEPLOY_DIR, 'temporal-server.yaml.tmpl');
export const DYNAMIC_CONFIG = path.join(DEPLOY_DIR, 'temporal-dynamicconfig.yaml');

/** The server loads `<config dir>/<environment>.yaml`. */
const ENVIRONMENT = 'asyncqueue';

/** A dynamic config value, written as `key: [{ value, constraints: {} }]`. */
export type DynamicConfigValue = string | number | boolean;

export interface ServerConfigInput {
  ip: string;
  ports: ClusterPorts;
  historyShards: number;
  postgres: { user: string; password: string };
  logLevel: string;
  dynamicConfigFile: string;
}

export interface ServerConfig {
  /** Arguments before `start --service=…`. */
  globalArgs: string[];
  env(service: TemporalService): NodeJS.ProcessEnv;
}

/** Writes the config folder and checks that the server can render it. */
export async function prepareServerConfig(serverBin: string, configDir: string, input: ServerConfigInput): Promise<ServerConfig> {
  await mkdir(configDir, { recursive: true });
  await writeFile(path.join(configDir, `${ENVIRONMENT}.yaml`), await readFile(SERVER_CONFIG_TEMPLATE, 'utf8'));
  const { ports } = input;
  const shared: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/',
    // Go's GC target, as the dev server has it (src/dev-server.ts): less GC CPU for a larger heap.
    GOGC: process.env.GOGC ?? '400',
    LOG_LEVEL: input.logLevel,
    POSTGRES_SEEDS: '127.0.0.1',
    DB_PORT: String(ports.postgres),
    POSTGRES_USER: input.postgres.user,
    POSTGRES_PWD: input.postgres.password,
    NUM_HISTORY_SHARDS: String(input.historyShards),
    BIND_ON_IP: input.ip,
    FRONTEND_GRPC_PORT: String(ports.services.frontend.grpc),
    FRONTEND_HTTP_PORT: String(ports.frontendHttp),
    FRONTEND_MEMBERSHIP_PORT: String(ports.services.frontend.membership),
    HISTORY_GRPC_PORT: String(ports.services.history.grpc),
    HISTORY_MEMBERSHIP_PORT: String(ports.services.history.membership),
    MATCHING_GRPC_PORT: String(ports.services.matching.grpc),
    MATCHING_MEMBERSHIP_PORT: String(ports.services.matching.membership),
    WORKER_GRPC_PORT: String(ports.services.worker.grpc),
    WORKER_MEMBERSHIP_PORT: String(ports.services.worker.membership),
    DYNAMIC_CONFIG_FILE_PATH: input.dynamicConfigFile,
  };
  const config: ServerConfig = {
    // No authorizer: the cluster listens on loopback only, like the dev server.
    globalArgs: ['--root', '/', '--config', configDir, '--env', ENVIRONMENT, '--allow-no-auth'],
    env: (service) => ({ ...shared, PROMETHEUS_ENDPOINT: `${input.ip}:${ports.services[service].metrics}` }),
  };
  const rendered = await run('rendering deploy/temporal-server.yaml.tmpl', serverBin, [...config.globalArgs, 'render-config'], {
    env: config.env('frontend'),
  });
  // For whoever wants to see what the services run with (the server masks the password).
  await writeFile(path.join(configDir, 'rendered.yaml'), rendered);
  await run('checking the dynamic config', serverBin, ['validate-dynamic-config', input.dynamicConfigFile]);
  return config;
}

/**
 * The dynamic config file the services read: deploy/temporal-dynamicconfig.yaml itself (edits to
 * it apply within a minute), or a copy in `dir` with `extra` appended.
 */
export async function dynamicConfigFile(dir: string, extra: Record<string, DynamicConfigValue>): Promise<string> {
  if (Object.keys(extra).length === 0) return DYNAMIC_CONFIG;
  const base = await readFile(DYNAMIC_CONFIG, 'utf8');
  const present = new Set([...base.matchAll(/^([A-Za-z][\w.]*):/gm)].map((m) => m[1]));
  const lines = [`\n# Added by tools/cluster for this cluster only.`];
  for (const [key, value] of Object.entries(extra)) {
    if (present.has(key)) {
      throw new ClusterError(`dynamic config key ${key} is set in deploy/temporal-dynamicconfig.yaml already; change it there`);
    }
    lines.push(`${key}:`, `  - value: ${JSON.stringify(value)}`, '    constraints: {}');
  }
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'dynamicconfig.yaml');
  await writeFile(file, `${base.trimEnd()}\n${lines.join('\n')}\n`);
  return file;
}
