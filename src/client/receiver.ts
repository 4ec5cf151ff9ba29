/**
 * The receiving side: check that a callback or webhook request really comes from AsyncQueue.
 * Built on the `standardwebhooks` library; always verifies the raw body, before any JSON parsing,
 * and rejects timestamps more than five minutes off (replays). The Fastify plugin is in fastify.ts
 * (`asyncqueue/client/fastify`), so that these types need no Fastify installed.
 */
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { SignatureVerificationError } from './errors.js';

export type HeaderBag = Record<string, string | string[] | undefined>;

export interface VerifiedRequest<T = unknown> {
  /** The parsed JSON body. */
  body: T;
  /** `webhook-id`: the same across retries of one message; deduplicate on it. */
  messageId: string;
  taskId: string | undefined;
  attempt: number | undefined;
}

/**
 * Verifies `rawBody` (exactly as received) against the request's signature headers and returns
 * the parsed body. Accepts several secrets (during a rotation); throws SignatureVerificationError.
 */
export function verifyRequest<T = unknown>(
  secret: string | readonly string[],
  rawBody: string | Uint8Array,
  headers: HeaderBag,
): VerifiedRequest<T> {
  const payload = typeof rawBody === 'string' ? rawBody : Buffer.from(rawBody).toString('utf8');
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  const secrets = typeof secret === 'string' ? [secret] : secret;
  let lastError: unknown;
  for (const candidate of secrets) {
    try {
      const body = new Webhook(candidate).verify(payload, flat) as T;
      const attempt = Number(flat['asyncqueue-attempt']);
      return {
        body,
        messageId: flat['webhook-id'] ?? '',
        taskId: flat['asyncqueue-task-id'],
        attempt: Number.isInteger(attempt) ? attempt : undefined,
      };
    } catch (err) {
      lastError = err;
    }
  }
  const reason = lastError instanceof WebhookVerificationError || lastError instanceof Error ? lastError.message : 'invalid';
  throw new SignatureVerificationError(`request signature rejected: ${reason}`, { cause: lastError });
}

/** What expressReceiver reads of a request: Express's, which is Node's IncomingMessage. */
interface ExpressLikeRequest {
  headers: HeaderBag;
  body?: unknown;
  asyncQueue?: Omit<VerifiedRequest, 'body'>;
  /** true once the stream has emitted 'end': someone else read the body already. */
  readableEnded?: boolean;
  on(event: 'data', listener: (chunk: Uint8Array | string) => void): unknown;
  on(event: 'end' | 'error', listener: (arg?: unknown) => void): unknown;
  removeListener?(event: 'data', listener: (chunk: Uint8Array | string) => void): unknown;
  destroy?(): unknown;
}
interface ExpressLikeResponse {
  status(code: number): { json(body: unknown): unknown };
  setHeader?(name: string, value: string): unknown;
  once?(event: 'finish', listener: () => void): unknown;
}

export interface ExpressReceiverOptions {
  secret: string | readonly string[];
  /** Bodies above this get `413` and are not read further; default 1 MiB (AsyncQueue's own limit). */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * Express middleware with the same contract: put it on AsyncQueue's routes instead of
 * `express.json()`. It reads the raw body itself, up to `maxBodyBytes` (`413` beyond, and the
 * connection is closed rather than the rest read), or uses the Buffer (or string) that
 * `express.raw({ type: 'application/json' })` or `express.text(…)` left in `request.body`.
 *
 * A JSON parser that ran first (`express.json()`, app-wide) has consumed the stream and kept only
 * the parsed object, so the bytes that were signed are gone and no 'end' event will ever come
 * again. That is a setup mistake, not a forgery: it is answered at once with `500`
 * `receiver_misconfigured`, whose message says to mount `express.raw({ type: 'application/json' })`
 * on these routes or to put this middleware before the JSON parser.
 */
export function expressReceiver(options: ExpressReceiverOptions) {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new RangeError(`expressReceiver: maxBodyBytes must be a positive integer, got ${String(options.maxBodyBytes)}`);
  }
  return (request: ExpressLikeRequest, response: ExpressLikeResponse, next: (err?: unknown) => void): void => {
    const verify = (raw: Buffer | string): void => {
      try {
        const verified = verifyRequest(options.secret, raw, request.headers);
        request.body = verified.body;
        request.asyncQueue = { messageId: verified.messageId, taskId: verified.taskId, attempt: verified.attempt };
        next();
      } catch (err) {
        response.status(401).json({ error: { code: 'invalid_signature', message: (err as Error).message } });
      }
    };
    const tooLarge = (): void => {
      // Reading on would only spend bandwidth on bytes we refuse: close the connection once the
      // answer is out.
      response.setHeader?.('connection', 'close');
      response.once?.('finish', () => request.destroy?.());
      response.status(413).json({
        error: { code: 'payload_too_large', message: `request body is larger than the ${maxBodyBytes}-byte limit` },
      });
    };

    if (Buffer.isBuffer(request.body) || typeof request.body === 'string') {
      return Buffer.byteLength(request.body) > maxBodyBytes ? tooLarge() : verify(request.body);
    }
    // Without stream state to ask (not a Node request), a body already set is the parser's.
    if (request.readableEnded ?? request.body !== undefined) {
      response.status(500).json({
        error: {
          code: 'receiver_misconfigured',
          message:
            'expressReceiver: the request body was already read by another body parser (express.json()?), so its ' +
            "signature cannot be checked; mount express.raw({ type: 'application/json' }) on this route, or put " +
            'expressReceiver before the JSON parser',
        },
      });
      return;
    }
    // A declared length over the limit is refused before a byte of the body is read.
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) return tooLarge();

    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const onData = (chunk: Uint8Array | string): void => {
      if (settled) return;
      const buffer =
        typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      size += buffer.length;
      if (size > maxBodyBytes) {
        settled = true;
        chunks.length = 0;
        request.removeListener?.('data', onData);
        return tooLarge();
      }
      chunks.push(buffer);
    };
    request.on('data', onData);
    request.on('end', () => {
      if (settled) return;
      settled = true;
      verify(Buffer.concat(chunks));
    });
    request.on('error', (err) => {
      if (settled) return;
      settled = true;
      next(err);
    });
  };
}
