/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): every outgoing request carries
 * `webhook-id`, `webhook-timestamp` and `webhook-signature`, the last being
 * `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, so any Standard Webhooks library verifies it.
 */
import { createHmac } from 'node:crypto';

const SECRET_PREFIX = 'whsec_';

/** A decoded signing key. Several keys sign at once so receivers can rotate without downtime. */
export class SigningKey {
  private constructor(private readonly key: Buffer) {}

  /** Accepts `whsec_<base64>` (the Standard Webhooks form) and returns undefined for anything else. */
  static parse(secret: string): SigningKey | undefined {
    if (!secret.startsWith(SECRET_PREFIX)) return undefined;
    const encoded = secret.slice(SECRET_PREFIX.length);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return undefined;
    const key = Buffer.from(encoded, 'base64');
    // Fewer than 24 bytes (192 bits) is too weak for HMAC-SHA256 signing keys.
    return key.length >= 24 ? new SigningKey(key) : undefined;
  }

  sign(messageId: string, timestamp: number, body: string): string {
    const mac = createHmac('sha256', this.key).update(`${messageId}.${timestamp}.${body}`).digest('base64');
    return `v1,${mac}`;
  }
}

export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/** Headers for one delivery attempt: a fresh timestamp, the message id kept across retries. */
export function signatureHeaders(
  keys: readonly SigningKey[],
  messageId: string,
  body: string,
  now: Date = new Date(),
): SignatureHeaders {
  const timestamp = Math.floor(now.getTime() / 1000);
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': keys.map((key) => key.sign(messageId, timestamp, body)).join(' '),
  };
}
