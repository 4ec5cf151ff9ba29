/**
 * The app's endpoints in the bench process: a callback receiver (`/cb/fast`, `/cb/slow/<ms>`,
 * `/cb/hold`) and a webhook receiver that records when each task's webhook arrived, the end of its
 * end-to-end latency.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { firstHeader } from '../shared/http-headers.js';
import { isRecord, parseJson } from '../shared/json-values.js';
import { startLoopbackServer, type LoopbackServer } from '../shared/loopback-server.js';
import { now } from './clock.js';
import type { HoldPolicy } from './hold-policy.js';

export interface WebhookArrival {
  at: number;
  status: string;
}

export function reply(response: ServerResponse, status: number, body: unknown): void {
  if (response.destroyed || response.writableEnded) return;
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

export type EndpointHandler = (endpoint: Endpoint, request: IncomingMessage, body: string, response: ServerResponse) => void;

/** A loopback server playing the app's callback or webhook endpoint, with what it counted. */
export class Endpoint {
  callbacks = 0;
  hold: HoldPolicy | undefined;
  webhooks = 0;
  duplicateWebhooks = 0;

  private constructor(private readonly server: LoopbackServer) {}

  static async start(onRequest: EndpointHandler): Promise<Endpoint> {
    let endpoint: Endpoint | undefined;
    const server = await startLoopbackServer(
      (request, body, response) => {
        if (endpoint !== undefined) onRequest(endpoint, request, body, response);
      },
      (http) => {
        http.keepAliveTimeout = 60_000;
        http.headersTimeout = 65_000;
        http.requestTimeout = 0; // held calls stay open as long as the bench wants
      },
    );
    endpoint = new Endpoint(server);
    return endpoint;
  }

  get origin(): string {
    return this.server.origin;
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

/**
 * Callback endpoint: `/cb/fast` answers 200 JSON at once; `/cb/slow/<ms>` after that many
 * milliseconds (a slow app); `/cb/hold` follows its HoldPolicy.
 */
export function callbackHandler(endpoint: Endpoint, request: IncomingMessage, _body: string, response: ServerResponse): void {
  endpoint.callbacks++;
  const url = request.url ?? '/';
  if (url.startsWith('/cb/hold') && endpoint.hold !== undefined) {
    endpoint.hold.handle(firstHeader(request.headers, 'asyncqueue-task-id') ?? `unknown-${randomUUID()}`, response);
    return;
  }
  const slow = /^\/cb\/slow\/(\d+)$/.exec(url);
  if (slow !== null) {
    setTimeout(() => reply(response, 200, { ok: true }), Number(slow[1]));
    return;
  }
  reply(response, 200, { ok: true });
}

/** Webhook endpoint: records the first arrival per task id (from the body) for end-to-end latency. */
export function webhookHandler(arrivals: Map<string, WebhookArrival>) {
  return (endpoint: Endpoint, _request: IncomingMessage, body: string, response: ServerResponse): void => {
    const at = now();
    endpoint.webhooks++;
    const event = parseJson(body);
    const taskId = isRecord(event) && typeof event.taskId === 'string' ? event.taskId : undefined;
    if (taskId !== undefined) {
      if (arrivals.has(taskId)) endpoint.duplicateWebhooks++;
      else arrivals.set(taskId, { at, status: isRecord(event) && typeof event.status === 'string' ? event.status : '?' });
    }
    reply(response, 200, { received: true });
  };
}
