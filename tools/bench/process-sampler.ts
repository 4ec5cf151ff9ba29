/**
 * What the benchmark's processes use, read from /proc: CPU seconds (utime + stime) and resident
 * memory of each tracked process (API, worker, Temporal server, the bench itself) or group of
 * processes (a cluster's four Temporal services; PostgreSQL and its backends), sampled every
 * 250 ms so a measurement window also knows each one's peak RSS; and the whole machine's busy CPU,
 * so load from processes not tracked shows. Linux only, like the benchmark.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { now } from './clock.js';
import { round } from './distribution.js';

/** Clock ticks per second of /proc's CPU times. */
export const CLK_TCK = await readClkTck();

async function readClkTck(): Promise<number> {
  try {
    const { stdout } = await promisify(execFile)('getconf', ['CLK_TCK']);
    const value = Number(stdout.trim());
    return Number.isFinite(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
}

export interface ProcReading {
  /** utime + stime, clock ticks. */
  ticks: number;
  rssKb: number;
  hwmKb: number;
}

export function readProc(pid: number): ProcReading | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): rest[0] is field 3 (state), so
    // utime (field 14) is rest[11] and stime (field 15) is rest[12].
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string): number => {
      const match = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
      return match ? Number(match[1]) : 0;
    };
    return { ticks, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** All CPUs together: busy and total ticks since boot (/proc/stat's first line). */
function readMachineTicks(): { busy: number; total: number; steal: number } {
  const first = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = first.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((sum, x) => sum + (Number.isFinite(x) ? x : 0), 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total, steal: v[7] ?? 0 };
}

export interface ProcUsage {
  pid: number;
  cpuSec: number;
  /** Of one core: 100 % = one core fully busy. */
  cpuPct: number;
  peakRssMb: number;
  endRssMb: number;
}

export interface ResourceUsage {
  seconds: number;
  procs: Record<string, ProcUsage>;
  /** Every CPU of the machine: busy CPU-seconds, and those not spent by the tracked processes. */
  machineBusyCpuSec: number;
  otherCpuSec: number;
  /** CPU-seconds the hypervisor gave to other guests while ours wanted them (in machineBusyCpuSec too). */
  stealCpuSec: number;
}

/** Processes whose parent is `ppid` (from /proc/<pid>/stat), with their command lines. */
export function childProcesses(ppid: number): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return found;
  }
  for (const entry of entries) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== ppid) continue;
      found.push({ pid: Number(entry), cmdline: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim() });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

export class Sampler {
  /** Each name stands for one process or a group, whose CPU and memory are summed. */
  private readonly procs = new Map<string, () => number[]>();
  private readonly windows = new Set<{ peak: Map<string, number> }>();
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => this.tick(), 250);
    this.timer.unref();
  }

  track(name: string, pid: number | undefined): void {
    if (pid !== undefined) this.procs.set(name, () => [pid]);
  }

  /** A group read afresh at each sample (PostgreSQL forks backends): a member that exits mid-window loses its share. */
  trackGroup(name: string, pids: () => number[]): void {
    this.procs.set(name, pids);
  }

  /** The sum of the group's (or the process's) VmHWM, MB: its members' peaks, not a peak of the sum. */
  lifetimePeakMb(name: string): number | undefined {
    const readings = (this.procs.get(name)?.() ?? []).map(readProc).filter((r): r is ProcReading => r !== undefined);
    return readings.length === 0 ? undefined : (round(readings.reduce((sum, r) => sum + r.hwmKb, 0) / 1024, 0) ?? 0);
  }

  untrack(name: string): void {
    this.procs.delete(name);
  }

  pid(name: string): number | undefined {
    return this.procs.get(name)?.()[0];
  }

  /** Each name with its (first) pid. */
  tracked(): Array<[string, number]> {
    return [...this.procs.entries()].flatMap(([name, pids]): Array<[string, number]> => {
      const pid = pids()[0];
      return pid === undefined ? [] : [[name, pid]];
    });
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Starts measuring the tracked processes; `close()` returns what they used since. */
  open(): { close(): ResourceUsage } {
    const startedAt = now();
    const machineStart = readMachineTicks();
    const start = new Map<string, { pid: number; readings: Map<number, ProcReading> }>();
    for (const [name, pids] of this.procs) {
      const readings = readAll(pids());
      const first = [...readings.keys()][0];
      if (first !== undefined) start.set(name, { pid: first, readings });
    }
    const window = { peak: new Map<string, number>([...start].map(([name, s]) => [name, sumRss(s.readings)])) };
    this.windows.add(window);
    return {
      close: (): ResourceUsage => {
        this.windows.delete(window);
        this.tick([window]);
        const seconds = (now() - startedAt) / 1000;
        const procs: Record<string, ProcUsage> = {};
        let ours = 0;
        for (const [name, { pid, readings }] of start) {
          const end = readAll(this.procs.get(name)?.() ?? []);
          if (end.size === 0) continue;
          // A member born during the window spent all its CPU in it.
          let ticks = 0;
          for (const [member, reading] of end) ticks += reading.ticks - (readings.get(member)?.ticks ?? 0);
          const cpuSec = ticks / CLK_TCK;
          ours += cpuSec;
          const endRss = sumRss(end);
          procs[name] = {
            pid,
            cpuSec: round(cpuSec, 2) ?? 0,
            cpuPct: round((100 * cpuSec) / Math.max(seconds, 0.001), 0) ?? 0,
            peakRssMb: round(Math.max(window.peak.get(name) ?? 0, endRss) / 1024, 0) ?? 0,
            endRssMb: round(endRss / 1024, 0) ?? 0,
          };
        }
        const machineEnd = readMachineTicks();
        const machineBusy = (machineEnd.busy - machineStart.busy) / CLK_TCK;
        return {
          seconds: round(seconds, 1) ?? 0,
          procs,
          machineBusyCpuSec: round(machineBusy, 1) ?? 0,
          otherCpuSec: round(Math.max(0, machineBusy - ours), 1) ?? 0,
          stealCpuSec: round((machineEnd.steal - machineStart.steal) / CLK_TCK, 1) ?? 0,
        };
      },
    };
  }

  private tick(windows: Iterable<{ peak: Map<string, number> }> = this.windows): void {
    const list = [...windows];
    if (list.length === 0) return;
    for (const [name, pids] of this.procs) {
      const readings = readAll(pids());
      if (readings.size === 0) continue;
      const rss = sumRss(readings);
      for (const window of list) {
        if (!window.peak.has(name)) continue;
        window.peak.set(name, Math.max(window.peak.get(name) ?? 0, rss));
      }
    }
  }
}

function readAll(pids: number[]): Map<number, ProcReading> {
  const readings = new Map<number, ProcReading>();
  for (const pid of pids) {
    const reading = readProc(pid);
    if (reading !== undefined) readings.set(pid, reading);
  }
  return readings;
}

/** Summed RSS, kB (for PostgreSQL this counts its shared buffers once per backend that touched them). */
function sumRss(readings: Map<number, ProcReading>): number {
  let kb = 0;
  for (const reading of readings.values()) kb += reading.rssKb;
  return kb;
}

/** Sampler and report name of the i-th (0-based) API or worker process: api, api-2, api-3… */
export function processName(kind: 'api' | 'worker', index: number): string {
  return index === 0 ? kind : `${kind}-${index + 1}`;
}
