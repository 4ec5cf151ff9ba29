/** The soak's Temporal dev server, which it crashes on purpose and brings back on the same data. */
import { DevServer, freePort } from '../../src/dev/dev-server.js';
import { sleep } from '../shared/timing.js';
import type { SoakEngine } from './engine.js';
import { recordFault } from './faults.js';
import { log } from './run-log.js';
import type { Rng } from './seeded-random.js';

/** The dev server on one port and one SQLite file, so a restart finds every task again. */
export class TemporalServer implements SoakEngine {
  readonly description = 'Temporal dev server (SQLite file)';
  readonly logDir = undefined;

  private constructor(
    private server: DevServer,
    private readonly port: number,
    private readonly dbFile: string,
  ) {}

  static async start(dbFile: string): Promise<TemporalServer> {
    const port = await freePort();
    return new TemporalServer(await TemporalServer.boot(port, dbFile), port, dbFile);
  }

  private static boot(port: number, dbFile: string): Promise<DevServer> {
    return DevServer.start({ port, uiPort: null, namespace: 'default', dbFile });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Every ~2–3 min; the first no later than 60 % into the run, so that `--minutes 1` has one. */
  firstFaultAfter(rng: Rng, durationMs: number): number {
    return Math.min(rng.between(120_000, 180_000), durationMs * 0.6);
  }

  nextFaultAfter(rng: Rng): number {
    return rng.between(120_000, 180_000);
  }

  injectFault(rng: Rng): Promise<void> {
    return this.crashAndRestart(rng.int(1_500, 2_500));
  }

  /** kill -9, as a crash would, then the same server again after `downMs`. */
  async crashAndRestart(downMs: number): Promise<void> {
    const killedAt = Date.now();
    await this.server.kill();
    recordFault('server-kill', `kill -9 Temporal dev server (pid ${this.server.pid}); restarting in ${downMs} ms`);
    await sleep(downMs);
    for (let attempt = 1; ; attempt++) {
      try {
        this.server = await TemporalServer.boot(this.port, this.dbFile);
        log(`Temporal dev server back (pid ${this.server.pid}) after ${((Date.now() - killedAt) / 1000).toFixed(1)} s down`);
        return;
      } catch (err) {
        if (attempt >= 5) throw err;
        log(`Temporal dev server restart ${attempt} failed (${(err as Error).message.split('\n')[0]}); retrying`);
        await sleep(2_000);
      }
    }
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}
