/**
 * What a cluster's data folder keeps between starts: the shard count and ports chosen at its first
 * start (cluster.json), the PostgreSQL password (generated, mode 0600), and which launcher and
 * child processes are running on it, so that a second launcher refuses to start and processes a
 * killed launcher left behind are stopped before new ones start.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ClusterPorts } from './ports.js';
import { ClusterError, sleep } from './processes.js';
import { processExists } from '../shared/process-exists.js';

export interface ClusterState {
  serverVersion: string;
  historyShards: number;
  ports: ClusterPorts;
}

export class DataFolder {
  constructor(readonly root: string) {}

  get postgresDir(): string {
    return path.join(this.root, 'postgres');
  }
  get logDir(): string {
    return path.join(this.root, 'logs');
  }
  get temporalConfigDir(): string {
    return path.join(this.root, 'temporal');
  }
  get uiConfigDir(): string {
    return path.join(this.root, 'ui');
  }
  private get stateFile(): string {
    return path.join(this.root, 'cluster.json');
  }
  private get lockFile(): string {
    return path.join(this.root, 'launcher.pid');
  }
  private get processesFile(): string {
    return path.join(this.root, 'processes.json');
  }

  async create(): Promise<void> {
    // 0755: when the launcher runs as root, PostgreSQL runs as `postgres` and must reach its folder.
    await mkdir(this.root, { recursive: true, mode: 0o755 });
    if (process.getuid?.() === 0) await chmod(this.root, 0o755);
    await mkdir(this.logDir, { recursive: true });
  }

  async readState(): Promise<ClusterState | undefined> {
    const text = await readFile(this.stateFile, 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as ClusterState);
  }

  async writeState(state: ClusterState): Promise<void> {
    await writeFile(this.stateFile, `${JSON.stringify(state, null, 2)}\n`);
  }

  /** The PostgreSQL password of the `temporal` user, generated at the first start. */
  async postgresPassword(): Promise<string> {
    const file = path.join(this.root, 'postgres-password');
    const existing = await readFile(file, 'utf8').catch(() => undefined);
    if (existing !== undefined && existing.trim() !== '') return existing.trim();
    const password = randomBytes(24).toString('hex');
    await writeFile(file, `${password}\n`, { mode: 0o600 });
    return password;
  }

  /** Claims the folder for this launcher; a ClusterError when another live launcher has it. */
  async lock(): Promise<void> {
    const owner = Number(await readFile(this.lockFile, 'utf8').catch(() => ''));
    if (owner > 0 && owner !== process.pid && (await commandLine(owner)).includes('node')) {
      throw new ClusterError(
        `another cluster launcher (pid ${owner}) is running on ${this.root}: stop it first (Ctrl-C, or kill ${owner})`,
      );
    }
    await writeFile(this.lockFile, `${process.pid}\n`);
    await this.stopLeftovers();
  }

  async unlock(): Promise<void> {
    await rm(this.lockFile, { force: true });
    await rm(this.processesFile, { force: true });
  }

  async recordProcesses(processes: { name: string; pid: number | undefined }[]): Promise<void> {
    await writeFile(this.processesFile, `${JSON.stringify(processes)}\n`);
  }

  /** Stops the processes a launcher that did not stop cleanly left running on this folder. */
  private async stopLeftovers(): Promise<void> {
    const text = await readFile(this.processesFile, 'utf8').catch(() => '[]');
    const recorded = JSON.parse(text) as { name: string; pid: number | undefined }[];
    const alive: { name: string; pid: number }[] = [];
    for (const { name, pid } of recorded) {
      // Only a process still running on this folder: the pid may have been reused since.
      if (pid !== undefined && (await commandLine(pid)).includes(this.root)) alive.push({ name, pid });
    }
    if (alive.length === 0) return;
    process.stderr.write(
      `cluster: stopping what a previous launcher left running on ${this.root}: ${alive.map((p) => `${p.name} (${p.pid})`).join(', ')}\n`,
    );
    // Temporal and the UI first, then PostgreSQL with a fast shutdown (SIGINT: it ends the sessions
    // still open instead of waiting for them), as a normal stop does.
    const database = alive.filter((p) => p.name === 'PostgreSQL');
    await stopAll(
      alive.filter((p) => p.name !== 'PostgreSQL'),
      'SIGTERM',
    );
    await stopAll(database, 'SIGINT');
  }
}

async function stopAll(processes: { pid: number }[], first: NodeJS.Signals): Promise<void> {
  if (processes.length === 0) return;
  for (const { pid } of processes) signal(pid, first);
  const gone = () => processes.every(({ pid }) => !processExists(pid));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !gone()) await sleep(200);
  if (gone()) return;
  for (const { pid } of processes) signal(pid, 'SIGKILL');
  while (!gone()) await sleep(100);
}

async function commandLine(pid: number): Promise<string> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return raw.replaceAll('\0', ' ');
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone already
  }
}
