/**
 * Idempotent create. The task id is derived from (caller, Idempotency-Key), so two requests with
 * one key name the same workflow, and Temporal's workflow-id uniqueness (REJECT_DUPLICATE, for as
 * long as the task is retained) decides the race: exactly one start succeeds. A hash of the
 * request, kept in the workflow's memo, tells a retry (same body) from a misuse (another body).
 */
import { createHash } from 'node:crypto';
import { AsyncQueueError, ValidationError } from '../../shared/errors.js';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
const MAX_KEY_LENGTH = 255;

export class IdempotencyConflictError extends AsyncQueueError {
  readonly code = 'idempotency_key_reused';
  override readonly statusCode = 409;
  constructor(readonly taskId: string) {
    super(`Idempotency-Key was already used for a different request (task ${taskId})`);
  }
}

/** The header's value, checked; undefined when the request has none. */
export function readIdempotencyKey(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new ValidationError('Idempotency-Key', 'must be given once');
  if (value.length === 0 || value.length > MAX_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(value)) {
    throw new ValidationError('Idempotency-Key', `must be 1–${MAX_KEY_LENGTH} visible ASCII characters`);
  }
  return value;
}

/** A UUID (version 8, "custom") derived from the caller and the key: same inputs, same task id. */
export function taskIdForKey(caller: string, key: string): string {
  const bytes = createHash('sha256').update(`asyncqueue/idempotency/v1\n${caller}\n${key}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Hash of a request's meaning: key order inside objects does not matter, values do. */
export function requestHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('base64url');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
