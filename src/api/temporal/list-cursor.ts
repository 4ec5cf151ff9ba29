/**
 * List cursors wrap Temporal's page token with a marker and a MAC: the server spends its whole
 * deadline retrying a token it cannot parse, so a made-up cursor must be refused here, as a 400.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { TemporalUnavailableError, ValidationError } from '../../shared/errors.js';

const CURSOR_MARKER = Buffer.from('aq2:');
const CURSOR_MAC_BYTES = 16;

function cursorMac(key: Buffer, token: Uint8Array): Buffer {
  return createHmac('sha256', key).update(token).digest().subarray(0, CURSOR_MAC_BYTES);
}

function encodeCursor(key: Buffer, token: Uint8Array): string {
  return Buffer.concat([CURSOR_MARKER, token, cursorMac(key, token)]).toString('base64url');
}

function decodeCursor(key: Buffer, cursor: string): Uint8Array {
  const bytes = Buffer.from(cursor, 'base64url');
  const refuse = () => new ValidationError('cursor', 'is not a cursor this service returned');
  if (bytes.length <= CURSOR_MARKER.length + CURSOR_MAC_BYTES) throw refuse();
  if (!bytes.subarray(0, CURSOR_MARKER.length).equals(CURSOR_MARKER)) throw refuse();
  const token = bytes.subarray(CURSOR_MARKER.length, bytes.length - CURSOR_MAC_BYTES);
  if (!timingSafeEqual(cursorMac(key, token), bytes.subarray(bytes.length - CURSOR_MAC_BYTES))) throw refuse();
  return token;
}

/** The page token a request's cursor names; null (the first page) without one. */
export function pageToken(key: Buffer, cursor: string | undefined): Uint8Array | null {
  return cursor !== undefined ? decodeCursor(key, cursor) : null;
}

/** The next page's cursor from Temporal's token, or null after the last page. */
export function nextCursor(key: Buffer, token: Uint8Array | null | undefined): string | null {
  return token && token.length > 0 ? encodeCursor(key, token) : null;
}

/**
 * A list that failed with a cursor: a token Temporal could not use (its MAC held: an older
 * deployment's, or a list that changed shape) is the same 400 as a made-up one; unreachable stays 503.
 */
export function refuseUnusableCursor(cursor: string | undefined): (err: unknown) => never {
  return (err) => {
    if (cursor !== undefined && err instanceof Error && !(err instanceof TemporalUnavailableError)) {
      throw new ValidationError('cursor', 'is not a cursor this service returned');
    }
    throw err;
  };
}
