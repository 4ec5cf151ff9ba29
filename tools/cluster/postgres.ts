/**
 * The cluster's own PostgreSQL: the Debian/Ubuntu `postgresql` package's binaries (installed with
 * apt when missing and the launcher runs as root), a data folder of its own made with initdb, one
 * server on 127.0.0.1 only, with password authentication and no Unix socket. As root it runs as the
 * `postgres` user, since PostgreSQL refuses to run as root.
 */
import { existsSync } from 'node:fs';
import { chown, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ClusterError, ManagedProcess, run, waitFor, type RunAs } from './processes.js';

/** The user Temporal connects as; initdb makes it the superuser. */
export const POSTGRES_USER = 'temporal';

export interface PostgresOptions {
  dataDir: string;
  port: number;
  password: string;
  logFile: string;
  /** Installs the `postgresql` package with apt when no binaries are found (root only; default true). */
  install?: boolean;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
  log: (line: string) => void;
  signal?: AbortSignal | undefined;
}

export interface Postgres {
  process: ManagedProcess;
  version: string;
  address: string;
}

const IS_ROOT = process.getuid?.() === 0;

/** Connections for 4 Temporal processes × (20 + 10) plus the tools, with room to spare. */
const DEFAULT_SETTINGS: Record<string, string> = {
  listen_addresses: '127.0.0.1',
  unix_socket_directories: '',
  max_connections: '200',
};

export async function startPostgres(options: PostgresOptions): Promise<Postgres> {
  const bin = await postgresBinaries(options.install ?? true, options.log);
  const runAs = IS_ROOT ? await userIds('postgres') : undefined;
  if (!existsSync(path.join(options.dataDir, 'PG_VERSION'))) await initdb(bin, options, runAs);

  const settings = { ...DEFAULT_SETTINGS, ...options.settings };
  const process_ = await ManagedProcess.start({
    name: 'PostgreSQL',
    command: path.join(bin, 'postgres'),
    args: [
      '-D',
      options.dataDir,
      '-p',
      String(options.port),
      ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
    logFile: options.logFile,
    runAs,
  });
  await waitFor(
    `PostgreSQL did not accept connections on 127.0.0.1:${options.port}`,
    async () => {
      // pg_isready exits 0 only once the server accepts connections (not while it recovers).
      await run('pg_isready', path.join(bin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(options.port)], {
        timeoutMs: 5000,
      });
      return true;
    },
    { timeoutMs: 60_000, alive: [process_], signal: options.signal },
  );
  // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
  const output = await run('postgres --version', path.join(bin, 'postgres'), ['--version']);
  const version = `PostgreSQL ${/\)\s*([\d.]+)/.exec(output)?.[1] ?? output.trim()}`;
  return { process: process_, version, address: `127.0.0.1:${options.port}` };
}

/** Fast shutdown: ends sessions, checkpoints, exits; the data folder is consistent after it. */
export async function stopPostgres(postgres: Postgres): Promise<void> {
  await postgres.process.stop('SIGINT', 60_000);
}

async function initdb(bin: string, options: PostgresOptions, runAs: RunAs | undefined): Promise<void> {
  options.log(`initialising a PostgreSQL data folder in ${options.dataDir}`);
  // A folder left by a failed attempt must go; initdb fills an empty one the server's user owns.
  await rm(options.dataDir, { recursive: true, force: true });
  await mkdir(options.dataDir, { mode: 0o700 });
  const pwfile = `${options.dataDir}.pwfile`;
  await writeFile(pwfile, `${options.password}\n`, { mode: 0o600 });
  try {
    if (runAs !== undefined) {
      await chown(options.dataDir, runAs.uid, runAs.gid);
      await chown(pwfile, runAs.uid, runAs.gid);
    }
    await run(
      'initdb',
      path.join(bin, 'initdb'),
      ['-D', options.dataDir, '-U', POSTGRES_USER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C'],
      { runAs, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' } },
    );
  } catch (err) {
    if (runAs !== undefined && err instanceof ClusterError && /Permission denied/.test(err.message)) {
      throw new ClusterError(
        `${err.message}\nPostgreSQL runs as the user "postgres", which must be able to enter every folder above ` +
          `${options.dataDir} (chmod o+x on them), or choose another data folder.`,
        { cause: err },
      );
    }
    throw err;
  } finally {
    await rm(pwfile, { force: true });
  }
}

/** The folder holding initdb, postgres and pg_isready; installs PostgreSQL when allowed. */
async function postgresBinaries(install: boolean, log: (line: string) => void): Promise<string> {
  const found = await findBinaries();
  if (found !== undefined) return found;
  if (!install || !IS_ROOT) {
    throw new ClusterError(
      'PostgreSQL is not installed (no initdb in $ASYNCQUEUE_POSTGRES_BIN_DIR, /usr/lib/postgresql/*/bin or on PATH). ' +
        'Install it (Debian/Ubuntu: sudo apt-get install -y postgresql), or run this as root to have it installed, ' +
        'or set ASYNCQUEUE_POSTGRES_BIN_DIR to the folder holding initdb and postgres.',
    );
  }
  log('PostgreSQL is not installed: apt-get update && apt-get install -y postgresql (once)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get update', 'apt-get', ['update'], { env, timeoutMs: 10 * 60_000 });
  await run('apt-get install postgresql', 'apt-get', ['install', '-y', 'postgresql'], { env, timeoutMs: 15 * 60_000 });
  const installed = await findBinaries();
  if (installed === undefined)
    throw new ClusterError('apt-get installed postgresql, but no initdb was found under /usr/lib/postgresql');
  return installed;
}

async function findBinaries(): Promise<string | undefined> {
  const has = (dir: string) => existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres'));
  const configured = process.env.ASYNCQUEUE_POSTGRES_BIN_DIR;
  if (configured !== undefined && configured !== '') {
    if (has(configured)) return configured;
    throw new ClusterError(`ASYNCQUEUE_POSTGRES_BIN_DIR=${configured} holds no initdb and postgres`);
  }
  // Debian keeps each major version apart; the newest wins.
  const versions = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
  for (const version of versions.filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))) {
    const dir = path.join('/usr/lib/postgresql', version, 'bin');
    if (has(dir)) return dir;
  }
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir !== '' && has(dir)) return dir;
  return undefined;
}

async function userIds(name: string): Promise<RunAs> {
  try {
    const [uid, gid] = await Promise.all([run('id -u', 'id', ['-u', name]), run('id -g', 'id', ['-g', name])]);
    return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
  } catch (err) {
    throw new ClusterError(
      `running as root, PostgreSQL must run as the user "${name}", which does not exist (the postgresql package creates it)`,
      { cause: err },
    );
  }
}
