/**
 * Bearer API keys. Keys are compared through their SHA-256 digests with timingSafeEqual, so the
 * comparison takes the same time whatever the key's length or how much of it matches.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../shared/errors.js';

/** The caller of a deployment without API keys. */
export const ANONYMOUS = 'anonymous';

export class ApiKeyVerifier {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /**
   * Throws UnauthorizedError unless the request carries one of the keys. Returns who is calling:
   * a stable, non-secret id of the key (a digest prefix), or `anonymous` when auth is off.
   */
  verify(request: FastifyRequest): string {
    if (!this.enabled) return ANONYMOUS;
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match?.[1] === undefined) {
      throw new UnauthorizedError('missing API key: send Authorization: Bearer <key>');
    }
    const presented = digest(match[1]);
    // Check every key, not just until the first match: the timing must not reveal which key matched.
    let valid = false;
    for (const candidate of this.digests) valid = timingSafeEqual(candidate, presented) || valid;
    if (!valid) throw new UnauthorizedError('invalid API key');
    return `key_${presented.subarray(0, 8).toString('hex')}`;
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}
