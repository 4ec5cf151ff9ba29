/**
 * A plain node:http server on 127.0.0.1 that hands each request to one handler once its whole body
 * has arrived: what the benchmark's and the soak's receivers (the app's callback and webhook
 * endpoints) are built on. All traffic of the tools stays on the loopback address.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { within } from './timing.js';

export type RequestHandler = (request: IncomingMessage, body: string, response: ServerResponse) => void;

export interface LoopbackServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Drops every connection (held calls included) and stops listening, bounded at 5 s. */
  close(): Promise<void>;
}

/** `tune` adjusts the server before it listens (the benchmark's held calls need long timeouts). */
export async function startLoopbackServer(handler: RequestHandler, tune?: (server: Server) => void): Promise<LoopbackServer> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => handler(request, Buffer.concat(chunks).toString('utf8'), response));
  });
  tune?.(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await within(new Promise<void>((resolve) => server.close(() => resolve())), 5_000);
    },
  };
}
