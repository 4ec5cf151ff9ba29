/**
 * A real HTTP server on 127.0.0.1 that plays the app's callback and webhook endpoints: it records
 * every request byte for byte and answers with whatever the test scripts for that path.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  receivedAt: number;
}

/** Answers one request. `request.socket` lets a test watch for the connection closing. */
export type Responder = (received: ReceivedRequest, response: ServerResponse, request: IncomingMessage) => void | Promise<void>;

export const respondJson =
  (status: number, body: unknown, headers: Record<string, string> = {}): Responder =>
  (_received, response) => {
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(JSON.stringify(body));
  };

export class Receiver {
  readonly requests: ReceivedRequest[] = [];
  private readonly scripts = new Map<string, Responder[]>();
  private readonly fallbacks = new Map<string, Responder>();
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    private readonly host: string,
  ) {}

  /** Listens on a free port of `host`, a loopback address (the whole 127.0.0.0/8 works on Linux, and `::1`). */
  static async start(host = '127.0.0.1', port = 0): Promise<Receiver> {
    let receiver: Receiver | undefined;
    const server = createServer((request, response) => {
      void receiver?.handle(request, response);
    });
    receiver = new Receiver(server, host);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject); // e.g. EADDRNOTAVAIL for ::1 on a host without IPv6
      server.listen(port, host, resolve);
    });
    return receiver;
  }

  get origin(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${port}`;
  }

  url(path: string): string {
    return `${this.origin}${path}`;
  }

  /** Answer the next requests to `path` with these responders, one each, then fall back. */
  script(path: string, ...responders: Responder[]): this {
    this.scripts.set(path, [...(this.scripts.get(path) ?? []), ...responders]);
    return this;
  }

  /** Answer every request to `path` (once scripts run out) with this responder. */
  always(path: string, responder: Responder): this {
    this.fallbacks.set(path, responder);
    return this;
  }

  to(path: string): ReceivedRequest[] {
    return this.requests.filter((request) => request.path === path);
  }

  async waitFor(path: string, count: number, timeoutMs = 20_000): Promise<ReceivedRequest[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.to(path).length < count) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new Error(`expected ${count} request(s) to ${path} within ${timeoutMs} ms, got ${this.to(path).length}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(remaining, 250));
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.add(done);
      });
    }
    return this.to(path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const received: ReceivedRequest = {
      method: request.method ?? '',
      path: new URL(request.url ?? '/', 'http://receiver').pathname,
      headers: request.headers,
      body: Buffer.concat(chunks).toString('utf8'),
      receivedAt: Date.now(),
    };
    this.requests.push(received);
    for (const wake of this.waiters) wake();
    this.waiters.clear();
    const responder =
      this.scripts.get(received.path)?.shift() ?? this.fallbacks.get(received.path) ?? respondJson(200, { ok: true });
    await responder(received, response, request);
  }
}
