/**
 * Whether the API may expect Temporal to answer. Once a call finds Temporal unreachable, every
 * request fails fast with `503` and `Retry-After: 1` instead of each waiting out the RPC deadline
 * (a create took 14.6 s to say 503 before this), and a probe asks Temporal once a second until it
 * answers again: recovery needs no restart and no request to find it.
 */
import { TemporalUnavailableError } from '../../shared/errors.js';

export interface TemporalAvailabilityOptions {
  /** A cheap call with a short deadline; resolves once Temporal answers. */
  probe: () => Promise<unknown>;
  intervalMs: number;
  onChange?: (available: boolean) => void;
}

export class TemporalAvailability {
  private unreachableSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: TemporalAvailabilityOptions) {}

  get available(): boolean {
    return this.unreachableSince === undefined;
  }

  /** Throws at once while Temporal is known to be unreachable. */
  assertAvailable(): void {
    if (this.unreachableSince !== undefined) {
      throw new TemporalUnavailableError('Temporal is not reachable; retry shortly', { retryAfterSeconds: 1 });
    }
  }

  /** A call found Temporal unreachable: fail fast from now on, until the probe gets an answer. */
  reportUnreachable(): void {
    if (this.unreachableSince !== undefined || this.closed) return;
    this.unreachableSince = Date.now();
    this.options.onChange?.(false);
    this.schedule();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private schedule(): void {
    this.timer = setTimeout(() => void this.check(), this.options.intervalMs);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    try {
      await this.options.probe();
    } catch {
      if (!this.closed) this.schedule();
      return;
    }
    this.unreachableSince = undefined;
    this.options.onChange?.(true);
  }
}
