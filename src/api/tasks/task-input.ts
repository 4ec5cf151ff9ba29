/**
 * Checks on a create request that JSON Schema cannot express: what a URL may point at and which
 * headers a caller may set. Every failure names the field.
 */
import { RESERVED_HEADER_NAMES, RESERVED_HEADER_PREFIXES, type CreateTaskBody } from '../schemas.js';
import { DestinationBlockedError, ValidationError } from '../../shared/errors.js';
import type { DestinationGuard } from '../../../activities/destination-guard.js';
import type { NewTask } from './task-service.js';
import { DEFAULT_CALLBACK_METHOD, methodHasBody, type CallbackMethod, type JsonValue } from '../../../workflows/task-contract.js';
import { flowControlFromRequest } from '../flow-control/flow-limits.js';

const MAX_HOST_LENGTH = 253;
/** Deeper JSON than this serves no API call and could exhaust the stack of a serializer downstream. */
export const MAX_PAYLOAD_DEPTH = 64;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers that belong to the transport or to AsyncQueue's own signature and bookkeeping (schemas.ts). */
const RESERVED_HEADERS = new Set(RESERVED_HEADER_NAMES);

export async function newTaskFromRequest(body: CreateTaskBody, guard: DestinationGuard): Promise<NewTask> {
  // Both names are looked up at once: a create waits for one DNS answer, not two in a row.
  const [callbackUrl, webhookUrl] = await Promise.all([
    checkUrl('callbackUrl', body.callbackUrl, guard),
    body.webhookUrl === undefined || body.webhookUrl === null ? null : checkUrl('webhookUrl', body.webhookUrl, guard),
  ]);
  const method = body.method ?? DEFAULT_CALLBACK_METHOD;
  return {
    callbackUrl,
    method,
    webhookUrl,
    payload: checkPayload(method, body.payload),
    retries: body.retries ?? 3,
    timeout: body.timeout ?? 30,
    delay: body.delay ?? 0,
    headers: checkHeaders(body.headers ?? {}),
    // A label given twice is one label: the search attribute holds a set.
    labels: [...new Set(body.labels ?? [])],
    // Only when given: the idempotency hash of a request without them stays what it was.
    ...(body.flowControl !== undefined ? { flowControl: flowControlFromRequest(body.flowControl) } : {}),
    ...(body.priority !== undefined ? { priority: body.priority } : {}),
  };
}

async function checkUrl(field: string, raw: string, guard: DestinationGuard): Promise<string> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValidationError(field, 'must be an absolute http or https URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ValidationError(field, `must use http or https, not ${url.protocol.slice(0, -1)}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new ValidationError(field, 'must not carry credentials; pass them in headers instead');
  }
  if (url.hash !== '') throw new ValidationError(field, 'must not have a #fragment (it is never sent)');
  if (url.hostname.length > MAX_HOST_LENGTH) {
    throw new ValidationError(field, `host is longer than ${MAX_HOST_LENGTH} characters`);
  }
  try {
    await guard.checkUrl(url);
  } catch (err) {
    if (err instanceof DestinationBlockedError) throw new ValidationError(field, err.message);
    throw err;
  }
  return url.href;
}

/**
 * A GET or DELETE sends no body, so a payload that would be lost is refused rather than dropped.
 * "Empty" is absent, `null` or `{}` (the default): the three mean "nothing to send", and are stored
 * alike as `{}`, so they are one request for idempotency too.
 */
function checkPayload(method: CallbackMethod, payload: unknown): JsonValue {
  if (methodHasBody(method)) return checkDepth('payload', payload === undefined ? {} : payload) as JsonValue;
  const empty =
    payload === undefined ||
    payload === null ||
    (typeof payload === 'object' && !Array.isArray(payload) && Object.keys(payload).length === 0);
  if (!empty) {
    throw new ValidationError('payload', `must be absent, null or {} with method ${method}, which sends no body`);
  }
  return {};
}

/** Iterative, so a hostile document cannot overflow the stack of the check itself. */
export function checkDepth(field: string, value: unknown): unknown {
  const stack: Array<{ node: unknown; depth: number }> = [{ node: value, depth: 1 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > MAX_PAYLOAD_DEPTH) throw new ValidationError(field, `is nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
    for (const child of Object.values(node)) stack.push({ node: child, depth: depth + 1 });
  }
  return value;
}

function checkHeaders(headers: Record<string, string>): Record<string, string> {
  const seen = new Set<string>();
  // Entries, not assignment: a header named __proto__ must stay a header, not touch a prototype.
  const checked: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    const field = `headers.${name}`;
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name)) throw new ValidationError(field, 'is not a valid HTTP header name');
    if (RESERVED_HEADERS.has(lower) || RESERVED_HEADER_PREFIXES.some((prefix) => lower.startsWith(prefix))) {
      throw new ValidationError(field, 'is set by AsyncQueue or the transport and cannot be overridden');
    }
    if (/[\r\n\0]/.test(value)) throw new ValidationError(field, 'must not contain CR, LF or NUL characters');
    // Visible ASCII, spaces and tabs: other characters have no single meaning on the wire, and the
    // HTTP client would refuse them only when the callback is sent, long after this request.
    if (!/^[\t\x20-\x7e]*$/.test(value)) throw new ValidationError(field, 'must be printable ASCII');
    if (seen.has(lower)) throw new ValidationError(field, 'is given twice (header names are case-insensitive)');
    seen.add(lower);
    checked.push([name, value]);
  }
  return Object.fromEntries(checked);
}
