/**
 * `aq.flowControl`: read, set, pause and resume the limits tasks of one `flowControl.key` share.
 *
 *   await aq.flowControl.set('report-generator', { parallelism: 5 });
 *   await aq.flowControl.pause('report-generator');   // no new attempt starts; in-flight ones finish
 *   const { inFlight, waiting } = await aq.flowControl.get('report-generator');
 */
import type { FlowKey, FlowLimits } from './types.js';

/** The part of the SDK's HTTP client this needs (index.ts). */
interface Requester {
  request<T>(method: string, path: string, options: { body?: unknown; retry: boolean }): Promise<T>;
}

export class FlowControl {
  constructor(private readonly http: Requester) {}

  /** The key's limits and live counts; AsyncQueueApiError 404 for a key no task or `set` named. */
  get(key: string): Promise<FlowKey> {
    return this.http.request<FlowKey>('GET', path(key), { retry: true });
  }

  /** Every key (at most 1,000), by key. */
  async list(): Promise<FlowKey[]> {
    return (await this.http.request<{ keys: FlowKey[] }>('GET', '/v1/flow-control', { retry: true })).keys;
  }

  /** Replaces the key's limits (at least one of parallelism and rate); creates the key if new. */
  set(key: string, limits: FlowLimits): Promise<FlowKey> {
    return this.http.request<FlowKey>('PUT', path(key), { body: limits, retry: true });
  }

  /** No new attempt of the key's tasks starts until `resume`; survives restarts. */
  pause(key: string): Promise<FlowKey> {
    return this.http.request<FlowKey>('POST', `${path(key)}/pause`, { retry: true });
  }

  resume(key: string): Promise<FlowKey> {
    return this.http.request<FlowKey>('POST', `${path(key)}/resume`, { retry: true });
  }
}

function path(key: string): string {
  return `/v1/flow-control/${encodeURIComponent(key)}`;
}
