/**
 * Memory and CPU of the processes a measurement runs on: the Temporal dev server (a child process,
 * read from /proc, so Linux only) and this process, which holds the worker, the API and the
 * receiver when the stack runs in-process. Phases are stated as CPU % of one core over the phase
 * (a 2-core machine has 200 %) and RSS at the phase's end and its peak, sampled every second.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Usage {
  rssBytes: number;
  cpuSeconds: number;
  /** This process only: the V8 heap in use, where the worker's cached workflows live. */
  heapUsedBytes?: number;
}

/** Clock ticks per second of /proc's CPU times; 100 on every common Linux, asked once anyway. */
const clockTicks = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * The fields of /proc/<pid>/stat after the command name (field 3, the state, first): the name, in
 * parentheses, may hold spaces, so fields are counted after its closing one.
 */
export function statFieldsAfterName(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

export function processUsage(pid: number): Usage {
  // utime and stime are fields 14 and 15 of the whole line, 12th and 13th after the name.
  const fields = statFieldsAfterName(pid);
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? 0);
  return { rssBytes: rssKb * 1024, cpuSeconds: ticks / clockTicks };
}

export function ownUsage(): Usage {
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return { rssBytes: memory.rss, cpuSeconds: (cpu.user + cpu.system) / 1e6, heapUsedBytes: memory.heapUsed };
}

export interface PhaseUsage {
  name: string;
  seconds: number;
  server: { cpuPercent: number; rssMb: number; peakRssMb: number };
  self: { cpuPercent: number; rssMb: number; peakRssMb: number; heapUsedMb: number };
}

const mb = (bytes: number): number => Math.round(bytes / 1024 / 1024);

/** Splits a run into named phases and states each one's load on the server and on this process. */
export class PhaseMonitor {
  readonly phases: PhaseUsage[] = [];
  private startedAt = performance.now();
  private server: Usage;
  private self: Usage;
  private peakServer = 0;
  private peakSelf = 0;
  private readonly timer: NodeJS.Timeout;

  /** `name`: the first phase, which starts now. */
  constructor(
    private readonly serverPid: number,
    private name: string,
  ) {
    this.server = processUsage(serverPid);
    this.self = ownUsage();
    this.timer = setInterval(() => this.sample(), 1_000);
    // A sampler must never be what keeps a finished measurement alive.
    this.timer.unref();
  }

  /** Ends the current phase (stating it) and starts `next`. */
  phase(next: string): PhaseUsage {
    const now = performance.now();
    const server = processUsage(this.serverPid);
    const self = ownUsage();
    const seconds = (now - this.startedAt) / 1000;
    const percent = (before: Usage, after: Usage): number =>
      seconds > 0 ? Math.round(((after.cpuSeconds - before.cpuSeconds) / seconds) * 100) : 0;
    const ended: PhaseUsage = {
      name: this.name,
      seconds,
      server: {
        cpuPercent: percent(this.server, server),
        rssMb: mb(server.rssBytes),
        peakRssMb: mb(Math.max(this.peakServer, server.rssBytes)),
      },
      self: {
        cpuPercent: percent(this.self, self),
        rssMb: mb(self.rssBytes),
        peakRssMb: mb(Math.max(this.peakSelf, self.rssBytes)),
        heapUsedMb: mb(self.heapUsedBytes ?? 0),
      },
    };
    this.phases.push(ended);
    this.name = next;
    this.startedAt = now;
    this.server = server;
    this.self = self;
    this.peakServer = server.rssBytes;
    this.peakSelf = self.rssBytes;
    return ended;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    try {
      this.peakServer = Math.max(this.peakServer, processUsage(this.serverPid).rssBytes);
    } catch {
      // The server has exited (the run is ending); its last figures stand.
    }
    this.peakSelf = Math.max(this.peakSelf, ownUsage().rssBytes);
  }
}

export function describePhase(phase: PhaseUsage): string {
  return (
    `${phase.name.padEnd(22)} ${phase.seconds.toFixed(1).padStart(6)} s | ` +
    `server CPU ${String(phase.server.cpuPercent).padStart(3)} % RSS ${phase.server.rssMb} MB (peak ${phase.server.peakRssMb}) | ` +
    `worker+API CPU ${String(phase.self.cpuPercent).padStart(3)} % RSS ${phase.self.rssMb} MB (peak ${phase.self.peakRssMb}, ` +
    `heap used ${phase.self.heapUsedMb})`
  );
}
