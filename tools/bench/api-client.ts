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

export function apiErrorText(status: number, body: unknown): string {
  const error = isRecord(body) && isRecord(body.error) ? body.error : undefined;
  return `HTTP ${status}${error !== undefined && typeof error.code === 'string' ? ` ${error.code}` : ''}`;
}
