/**
 * How often an attempt reports that its worker is alive: at 40 % of the heartbeat timeout, well
 * inside it (the SDK sends at most one per 80 % of it anyway). The workflow always sets a
 * timeout; without one, nothing times out and the beats are harmless.
 */
export function heartbeatIntervalMs(heartbeatTimeoutMs: number | undefined): number {
  return Math.max(100, 0.4 * (heartbeatTimeoutMs ?? 30_000));
}
