/**
 * The soak's loopback receiver: one responder per path, 200 `{"ok":true}` for any other. The test
 * suite has a fuller one (test/support/receiver.ts: scripts, a request log, waiting); the soak needs
 * only fixed routes, and keeps no log of its own (Traffic keeps what it needs), so a long run does
 * not hold every request in memory.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { startLoopbackServer, type LoopbackServer } from '../shared/loopback-server.js';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  receivedAt: number;
}

export type Responder = (received: ReceivedRequest, response: ServerResponse) => void;

const answerOk: Responder = (_received, response) => {
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ ok: true }));
};

export class Receiver {
  private readonly routes = new Map<string, Responder>();

  private constructor(private readonly server: LoopbackServer) {}

  static async start(): Promise<Receiver> {
    let receiver: Receiver | undefined;
    const server = await startLoopbackServer((request, body, response) => {
      const received: ReceivedRequest = {
        method: request.method ?? '',
        path: new URL(request.url ?? '/', 'http://receiver').pathname,
        headers: request.headers,
        body,
        receivedAt: Date.now(),
      };
      (receiver?.routes.get(received.path) ?? answerOk)(received, response);
    });
    receiver = new Receiver(server);
    return receiver;
  }

  get origin(): string {
    return this.server.origin;
  }

  url(path: string): string {
    return `${this.origin}${path}`;
  }

  /** Answer every request to `path` with this responder. */
  always(path: string, responder: Responder): this {
    this.routes.set(path, responder);
    return this;
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
