/**
 * Idempotent create. The task id is derived from (caller, Idempotency-Key), so two requests with
 * one key name the same workflow, and Temporal's workflow-id uniqueness (REJECT_DUPLICATE, for as
 * long as the task is retained) decides the race: exactly one start succeeds. A hash of the
 * request, kept in the workflow's memo, tells a retry (same body) from a misuse (another body).
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { AsyncQueueError, ValidationError } from '../../shared/errors.js';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
const MAX_KEY_LENGTH = 255;

export class IdempotencyConflictError extends AsyncQueueError {
  readonly code = 'idempotency_key_reused';
  override readonly statusCode = 409;
  /** `taskId`: the task (or, with `what`, the operation) the key made. */
  constructor(
    readonly taskId: string,
    what: 'task' | 'operation' = 'task',
  ) {
    super(`Idempotency-Key was already used for a different request (${what} ${taskId})`);
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
  return uuidFrom(`asyncqueue/idempotency/v1\n${caller}\n${key}`);
}

/** The bulk operation's id for (caller, key): its own space, so one key may name a task and an operation. */
export function operationIdForKey(caller: string, key: string): string {
  return uuidFrom(`asyncqueue/idempotency/bulk/v1\n${caller}\n${key}`);
}

function uuidFrom(text: string): string {
  const bytes = createHash('sha256').update(text).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Hash of a request's meaning: key order inside objects does not matter, values do. Over the
 * request's RFC 8785 (JCS) canonical JSON; RFC 8785 covers I-JSON only, and canonicalize refuses a
 * lone surrogate ("\ud800"), which JSON.parse lets into a payload and AsyncQueue delivers as sent:
 * such a request is hashed over the legacy serialisation, which escapes it.
 */
export function requestHash(value: unknown): string {
  return sha256(jcs(value) ?? legacyCanonicalJson(value));
}

/**
 * Whether `stored`, the hash kept in the memo of the task a key created, is this request's. A
 * task created before requestHash used canonicalize keeps legacyRequestHash's hash for as long as
 * it is retained, so that one is accepted too.
 */
export function isSameRequest(stored: string | undefined, value: unknown): boolean {
  return stored !== undefined && (stored === requestHash(value) || stored === legacyRequestHash(value));
}

/**
 * The hash before requestHash used canonicalize. The two agree on every request the API hashes
 * (parsed JSON: no undefined, NaN or toJSON), so the upgrade changed no stored hash; isSameRequest
 * accepts this one as well so that a retry of an older task can never become a 409 should they
 * differ. It can go, with its use in isSameRequest, once every task created before the upgrade
 * has passed its retention (ASYNCQUEUE_RETENTION_DAYS, or the cluster namespace's retention).
 */
export function legacyRequestHash(value: unknown): string {
  return sha256(legacyCanonicalJson(value));
}

function jcs(value: unknown): string | undefined {
  try {
    return canonicalize(value) ?? 'null';
  } catch {
    return undefined; // not I-JSON
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/** Sorted keys, JSON.stringify for the rest (ES2019's is well-formed: it escapes lone surrogates). */
function legacyCanonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(legacyCanonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${legacyCanonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
