/**
 * `--engine-cpus 0`: the engine (Temporal's processes and PostgreSQL) on those CPUs, everything
 * else (the bench, its baseline worker, AsyncQueue's API and worker) on the rest. In production
 * the engine runs on machines of its own; on one machine shared by all, a target's client-side
 * CPU (AsyncQueue's API hop, its worker) takes cycles from the engine. Split, the engine's own
 * cost per task sets each target's limit, as it does on a cluster. Linux's `taskset` (util-linux).
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { processExists } from '../shared/process-exists.js';

export interface CpuSplit {
  /** taskset's list: the engine's CPUs, and the clients'. */
  engine: string;
  clients: string;
}

/** Parses `--engine-cpus` (`0`, `0,1`, `0-1`); the clients get every CPU it does not name. */
export function parseCpuSplit(value: string, cpuCount = os.cpus().length): CpuSplit {
  const engine = new Set<number>();
  for (const part of value.split(',').map((p) => p.trim())) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (range === null) throw new Error(`--engine-cpus: "${part}" is not a CPU number or range (e.g. 0 or 0-1)`);
    const from = Number(range[1]);
    const to = Number(range[2] ?? range[1]);
    if (to < from) throw new Error(`--engine-cpus: the range ${part} is empty`);
    for (let cpu = from; cpu <= to; cpu++) engine.add(cpu);
  }
  const outside = [...engine].filter((cpu) => cpu >= cpuCount);
  if (outside.length > 0) throw new Error(`--engine-cpus: this machine has CPUs 0-${cpuCount - 1}, not ${outside.join(', ')}`);
  const clients = Array.from({ length: cpuCount }, (_, cpu) => cpu).filter((cpu) => !engine.has(cpu));
  if (clients.length === 0) throw new Error('--engine-cpus: leave at least one CPU for the API, the workers and the load');
  return { engine: [...engine].sort((a, b) => a - b).join(','), clients: clients.join(',') };
}

/**
 * Pins every thread of each process to `cpus`. Threads and children they start later inherit it
 * (Go's new threads, PostgreSQL's backends forked by the postmaster). A process that has exited
 * meanwhile is skipped.
 */
export function pinProcesses(pids: readonly number[], cpus: string): void {
  for (const pid of pids) {
    try {
      execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', cpus, String(pid)], { stdio: 'ignore' });
    } catch (err) {
      if (processExists(pid)) throw new Error(`taskset could not pin process ${pid} to CPUs ${cpus}: ${String(err)}`);
    }
  }
}

/** Pins every process of an engine the bench started (Temporal's, and PostgreSQL on the cluster). */
export function pinEngine(engine: { processGroups: Record<string, () => number[]> }, split: CpuSplit): void {
  pinProcesses(
    Object.values(engine.processGroups).flatMap((pids) => pids()),
    split.engine,
  );
}

/** The reports' words for a split: `the engine pinned to CPU 0, the bench, API and workers to CPU 1; ` (empty: none). */
export function describeCpuSplit(split: CpuSplit | null): string {
  return split !== null ? `the engine pinned to CPU ${split.engine}, the bench, API and workers to CPU ${split.clients}; ` : '';
}
