/**
 * What the soak runs AsyncQueue on, and how it hurts it: the file-backed dev server it kill -9s
 * (temporal-server.ts), or, with `--cluster`, a Temporal cluster on PostgreSQL of its own whose
 * services it kill -9s one at a time and whose database it restarts (temporal-cluster.ts).
 */
import type { Rng } from './seeded-random.js';

export interface SoakEngine {
  /** For the books: "Temporal dev server", "Temporal 1.29.1 cluster on PostgreSQL 17.6 …". */
  readonly description: string;
  /** The frontend's `host:port`, for TEMPORAL_ADDRESS. */
  readonly address: string;
  /** When its first fault comes, in ms from the start of the load, for a load of `durationMs`. */
  firstFaultAfter(rng: Rng, durationMs: number): number;
  /** When the next fault comes, in ms after one has been injected. */
  nextFaultAfter(rng: Rng, durationMs: number): number;
  /** One fault, recorded with recordFault, and the recovery from it; resolves once the part is back. */
  injectFault(rng: Rng): Promise<void>;
  stop(): Promise<void>;
  /** Where its logs are worth keeping after a failed run (undefined: nothing to keep). */
  readonly logDir: string | undefined;
}
