/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): every outgoing request carries
 * `webhook-id`, `webhook-timestamp` and `webhook-signature`. The `standardwebhooks` library makes
 * each signature (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`), so any Standard
 * Webhooks library verifies it; this module adds the secrets' checks and one signature per secret.
 */
import { Webhook } from 'standardwebhooks';

const SECRET_PREFIX = 'whsec_';

/** A checked signing secret. Several keys sign at once so receivers can rotate without downtime. */
export class SigningKey {
  private constructor(private readonly webhook: Webhook) {}

  /** Accepts `whsec_<base64>` (the Standard Webhooks form) and returns undefined for anything else. */
  static parse(secret: string): SigningKey | undefined {
    if (!secret.startsWith(SECRET_PREFIX)) return undefined;
    const encoded = secret.slice(SECRET_PREFIX.length);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return undefined;
    // Fewer than 24 bytes (192 bits) is too weak for HMAC-SHA256 signing keys.
    if (Buffer.from(encoded, 'base64').length < 24) return undefined;
    return new SigningKey(new Webhook(secret));
  }

  sign(messageId: string, timestamp: Date, body: string): string {
    return this.webhook.sign(messageId, timestamp, body);
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
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    // The Standard Webhooks header form for several signatures: space-separated.
    'webhook-signature': keys.map((key) => key.sign(messageId, now, body)).join(' '),
  };
}
