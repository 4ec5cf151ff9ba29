/**
 * `aq.flowControl`: read, set, pause and resume the limits tasks of one `flowControl.key` share.
 *
 *   await aq.flowControl.set('report-generator', { parallelism: 5 });
 *   await aq.flowControl.pause('report-generator');   // no new attempt starts; in-flight ones finish
 *   const { inFlight, waiting } = await aq.flowControl.get('report-generator');
 */
import { allPages, pagePath, type PageOptions } from './pages.js';
import type { FlowKey, FlowKeyPage, FlowLimits } from './types.js';

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

  /** Every key, following the pages; sorted by key within each page of `pageSize` (default 1,000). */
  list(options: { pageSize?: number } = {}): Promise<FlowKey[]> {
    return allPages(
      (page) => this.page(page),
      (page) => page.keys,
      options.pageSize,
    );
  }

  /** One page of keys: `limit` of them (1–1,000, default 1,000) after `cursor` (the last page's `nextCursor`). */
  page(options: PageOptions = {}): Promise<FlowKeyPage> {
    return this.http.request<FlowKeyPage>('GET', pagePath('/v1/flow-control', options), { retry: true });
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
