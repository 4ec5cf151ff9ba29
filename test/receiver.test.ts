/**
 * expressReceiver on a real node:http server, with the request and response Express would hand it
 * (Node's own, plus the `status().json()` Express adds): bodies read from the stream or left by
 * express.raw(), the body size cap, and a JSON parser that consumed the stream first.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { expressReceiver } from '../src/client/index.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const LIMIT = 1024;

type Middleware = ReturnType<typeof expressReceiver>;
type Request = IncomingMessage & {
  body?: unknown;
  asyncQueue?: { messageId: string; taskId: string | undefined; attempt: number | undefined };
};

/** Reads the whole stream, as every body parser does before it sets `request.body`. */
async function readAll(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** What runs before the receiver on each path, as an app might have mounted it. */
const upstream: Record<string, (request: Request) => Promise<void>> = {
  '/plain': async () => undefined,
  // express.json(): the stream is consumed, only the parsed object is left.
  '/after-json': async (request) => {
    request.body = JSON.parse((await readAll(request)).toString('utf8'));
  },
  // express.raw({ type: 'application/json' }): the raw bytes as a Buffer.
  '/after-raw': async (request) => {
    request.body = await readAll(request);
  },
  // express.text({ type: 'application/json' }): the raw body as a string.
  '/after-text': async (request) => {
    request.body = (await readAll(request)).toString('utf8');
  },
  // Express 4's express.json() on a type it does not parse: `{}` and the stream left unread.
  '/after-skipped-json': async (request) => {
    request.body = {};
  },
};

let server: http.Server;
let origin: string;
const handled: Array<{ path: string; messageId: string | undefined; body: unknown }> = [];

before(async () => {
  const middleware: Middleware = expressReceiver({ secret: SECRET, maxBodyBytes: LIMIT });
  server = http.createServer((request: Request, response: ServerResponse) => {
    const path = request.url ?? '/';
    // Express's response is Node's, with `status(code).json(body)` added.
    const res = Object.assign(response, {
      status: (code: number) => ({
        json: (body: unknown) => response.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body)),
      }),
    });
    void (upstream[path] ?? upstream['/plain']!)(request).then(() =>
      middleware(request, res, (err?: unknown) => {
        if (err) return void response.writeHead(500).end(String(err));
        handled.push({ path, messageId: request.asyncQueue?.messageId, body: request.body });
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ received: request.body }));
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function signed(body: string): Record<string, string> {
  const id = `msg_${randomUUID()}`;
  const at = new Date();
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(SECRET).sign(id, at, body),
  };
}

/** POST through fetch, failing (instead of hanging the suite) when no answer comes. */
async function post(path: string, body: string, headers = signed(body)): Promise<{ status: number; body: any }> {
  const response = await fetch(`${origin}${path}`, { method: 'POST', headers, body, signal: AbortSignal.timeout(5_000) });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
}

describe('expressReceiver', () => {
  const event = JSON.stringify({ type: 'task.succeeded', taskId: 't-1', status: 'succeeded', result: { n: 1 } });

  it('verifies the body it reads from the stream, and refuses a changed byte with 401', async () => {
    const headers = signed(event);
    const ok = await post('/plain', event, headers);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.received, JSON.parse(event));
    assert.equal(handled.at(-1)?.messageId, headers['webhook-id']);

    const count = handled.length;
    const forged = await post('/plain', event.replace('"n":1', '"n":2'), headers);
    assert.equal(forged.status, 401);
    assert.equal(forged.body.error.code, 'invalid_signature');
    assert.equal(handled.length, count, 'the handler did not run');
  });

  it('uses the Buffer express.raw() or the string express.text() left, and reads a stream Express 4 left unread', async () => {
    for (const path of ['/after-raw', '/after-text', '/after-skipped-json']) {
      const ok = await post(path, event);
      assert.equal(ok.status, 200, `${path}: ${JSON.stringify(ok.body)}`);
      assert.deepEqual(ok.body.received, JSON.parse(event), path);
      assert.equal((await post(path, `${event} `, signed(event))).status, 401, path);
    }
  });

  it('answers a JSON parser that consumed the stream first with a 500 that says how to mount it', async () => {
    const count = handled.length;
    const answer = await post('/after-json', event);
    assert.equal(answer.status, 500);
    assert.equal(answer.body.error.code, 'receiver_misconfigured');
    assert.match(answer.body.error.message, /express\.raw\(\{ type: 'application\/json' \}\)/);
    assert.match(answer.body.error.message, /before the JSON parser/);
    assert.equal(handled.length, count);
  });

  it('answers 413 once a streamed body passes maxBodyBytes, and closes the connection instead of reading on', async () => {
    const count = handled.length;
    // A chunked body that never ends: the receiver must neither wait for its end nor keep reading.
    const request = http.request(`${origin}/plain`, { method: 'POST', headers: signed(event) });
    const closed = new Promise<void>((resolve) => request.once('close', resolve));
    request.on('error', () => undefined); // the server hangs up on a request still being sent
    const answered = new Promise<IncomingMessage>((resolve) => request.once('response', resolve));
    request.write('x'.repeat(LIMIT / 2));
    request.write('x'.repeat(LIMIT / 2 + 1));
    const response = await within(answered, 'a 413');
    assert.equal(response.statusCode, 413);
    assert.equal(response.headers.connection, 'close');
    const body = JSON.parse((await readAll(response)).toString('utf8'));
    assert.equal(body.error.code, 'payload_too_large');
    assert.match(body.error.message, new RegExp(`${LIMIT}-byte limit`));
    await within(closed, 'the server to close the connection');
    assert.equal(handled.length, count);
  });

  it('refuses a declared Content-Length over maxBodyBytes before reading the body', async () => {
    // Only the headers are sent: an answer proves the receiver did not wait for the body.
    const request = http.request(`${origin}/plain`, {
      method: 'POST',
      headers: { ...signed(event), 'content-length': String(LIMIT + 1) },
    });
    request.on('error', () => undefined);
    const answered = new Promise<IncomingMessage>((resolve) => request.once('response', resolve));
    request.flushHeaders();
    const response = await within(answered, 'a 413');
    assert.equal(response.statusCode, 413);
    request.destroy();
  });

  it('applies the same limit to a Buffer express.raw() left', async () => {
    const large = JSON.stringify({ blob: 'x'.repeat(LIMIT) });
    const answer = await post('/after-raw', large);
    assert.equal(answer.status, 413);
    assert.equal(answer.body.error.code, 'payload_too_large');
  });

  it('rejects a maxBodyBytes that is not a positive integer, naming it', () => {
    for (const maxBodyBytes of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => expressReceiver({ secret: SECRET, maxBodyBytes }), /maxBodyBytes/);
    }
  });
});

async function within<T>(promise: Promise<T>, what: string, timeoutMs = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
