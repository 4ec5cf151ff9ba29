/**
 * The bench's HTTP client for AsyncQueue's API: one keep-alive pool per API process, large enough
 * that the open-model load never waits for a connection (queueing must show in the server, not here).
 */
import { Pool, type Dispatcher } from 'undici';
import { isRecord, parseJson } from '../shared/json-values.js';
import { errorKey } from './targets/target.js';

export interface ApiAnswer {
  status: number;
  body: unknown;
  error?: string;
}

export class ApiClient {
  readonly pool: Pool;

  constructor(readonly baseUrl: string) {
    this.pool = new Pool(baseUrl, {
      connections: 512,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
      connectTimeout: 10_000,
    });
  }

  /** Never throws: status 0 with `error` when there was no HTTP answer. */
  post(urlPath: string, body: unknown): Promise<ApiAnswer> {
    return this.send({
      method: 'POST',
      path: urlPath,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  get(urlPath: string): Promise<ApiAnswer> {
    return this.send({ method: 'GET', path: urlPath });
  }

  /** A counter of the API's /metrics, its series summed; undefined when it could not be read. */
  async counter(name: string): Promise<number | undefined> {
    try {
      const response = await this.pool.request({ method: 'GET', path: '/metrics' });
      const text = await response.body.text();
      return response.statusCode === 200 ? sumCounter(text, name) : undefined;
    } catch {
      return undefined;
    }
  }

  private async send(request: Dispatcher.RequestOptions): Promise<ApiAnswer> {
    try {
      const response = await this.pool.request(request);
      const text = await response.body.text();
      return { status: response.statusCode, body: text === '' ? undefined : parseJson(text) };
    } catch (err) {
      return { status: 0, body: undefined, error: errorKey(err) };
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** The sum of `name`'s series in Prometheus text (0 when it has none). */
export function sumCounter(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^(\w+)(?:\{[^}]*\})?\s+([0-9.eE+-]+)$/.exec(line.trim());
    if (match?.[1] === name) sum += Number(match[2]);
  }
  return sum;
}

export function apiErrorText(status: number, body: unknown): string {
  const error = isRecord(body) && isRecord(body.error) ? body.error : undefined;
  return `HTTP ${status}${error !== undefined && typeof error.code === 'string' ? ` ${error.code}` : ''}`;
}
