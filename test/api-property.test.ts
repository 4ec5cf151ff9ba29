/**
 * Property-based test of the API's edge (the security issue's acceptance test): requests are
 * generated from the API's own TypeBox schemas, then mutated, and sent to a real API in front of
 * a real Temporal server.
 *
 * Schemathesis (openapi-fuzz.test.ts) now holds every answer to the OpenAPI document: no 5xx,
 * documented statuses, bodies and headers, schema-valid requests accepted and schema-violating
 * ones refused. This file keeps what a schema-driven fuzzer cannot see:
 *
 * - a 400 names the field it is about: the message starts with the field that was mutated
 *   (`retries:`, `headers.x-a:`, `body:` for the body as a whole, the param's name in queries),
 *   and every rejection has exactly `{ error: { code, message } }` with a code for its status;
 * - the API's own rules on top of the schema: URLs with credentials or fragments, private and
 *   special addresses in every spelling, reserved and case-duplicated callback headers, CR/LF/NUL
 *   in header values, payloads nested too deep;
 * - hostile bodies Schemathesis does not send: malformed JSON, prototype-poisoning keys, other
 *   media types, bodies over the limit;
 * - idempotency: the same Idempotency-Key and body answer 200 with the same task, another body a
 *   409; and an accepted create is stored as given (the list shows the values asked for);
 * - list cursors: a real one is taken, a tampered or forged one is a 400 naming `cursor`, at once;
 * - a rejected request starts nothing: the workflows in this harness's task queue are exactly the
 *   202s, no more.
 *
 * No worker runs, so accepted tasks stay pending and no URL is ever contacted. The create-time
 * destination check resolves hostnames through a fake resolver (no DNS): `*.internal.test` names
 * resolve to private addresses, every other name to a public one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { CreateTaskBody, CreateTaskHeaders, ListTasksQuery } from '../src/api/schemas.js';
import { DestinationGuard } from '../activities/destination-guard.js';
import { MAX_PAYLOAD_DEPTH } from '../src/api/tasks/task-input.js';
import { TASK_WORKFLOW_TYPE, workflowIdForTask } from '../workflows/task-contract.js';
import { eventually } from './support/eventually.js';
import {
  arbitraryFor,
  type Hooks,
  isPlainObject,
  join,
  type JsonSchema,
  KEY,
  recordParts,
  types,
  validates,
  violationsFor,
} from './support/schema-arbitraries.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';
import { tamperedCursor } from './support/cursors.js';

const BODY_SCHEMA = JSON.parse(JSON.stringify(CreateTaskBody)) as JsonSchema;
const QUERY_SCHEMA = JSON.parse(JSON.stringify(ListTasksQuery)) as JsonSchema;
const BODY_FIELDS = Object.entries(BODY_SCHEMA.properties ?? {});
const REQUIRED = BODY_SCHEMA.required ?? [];

const isUrlSchema = (schema: JsonSchema): boolean =>
  schema.type === 'string' && (/\burl\b/i.test(schema.description ?? '') || (schema as { format?: string }).format === 'uri');
/** Fields whose schema (or one of whose union branches) is the http(s) URL string. */
const URL_FIELDS = BODY_FIELDS.filter(([, s]) => isUrlSchema(s) || (s.anyOf ?? []).some(isUrlSchema)).map(([name]) => name);
/** Fields holding a string→string record: the callback's extra headers. */
const HEADER_FIELDS = BODY_FIELDS.filter(([, s]) => recordParts(s) !== undefined).map(([name]) => name);

/** Keys the JSON parser refuses as prototype poisoning (tested on purpose, not by accident). */
const POISON_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** What README promises a caller cannot set: host, content-*, hop-by-hop, webhook-*, asyncqueue-*. */
const RESERVED_EXACT = [
  'Host',
  'Content-Length',
  'Content-Type',
  'Content-Encoding',
  'Content-Language',
  'Content-Range',
  'Connection',
  'Keep-Alive',
  'Proxy-Connection',
  'Proxy-Authenticate',
  'Proxy-Authorization',
  'TE',
  'Trailer',
  'Transfer-Encoding',
  'Upgrade',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  'AsyncQueue-Attempt',
  'AsyncQueue-Task-Id',
];
const RESERVED_PREFIXES = ['content-', 'webhook-', 'asyncqueue-', 'proxy-'];
const isReservedHeader = (name: string): boolean => {
  const lower = name.toLowerCase();
  return (
    RESERVED_EXACT.some((r) => r.toLowerCase() === lower) ||
    ['expect', 'trailers', 'upgrade-insecure-requests'].includes(lower) ||
    RESERVED_PREFIXES.some((p) => lower.startsWith(p))
  );
};

const headerName = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,24}$/).filter((name) => !isReservedHeader(name));
const uniqueIgnoringCase = (headers: Record<string, unknown>): boolean => {
  const lower = Object.keys(headers).map((name) => name.toLowerCase());
  return new Set(lower).size === lower.length;
};

const hostLabel = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?$/).filter((label) => !/^xn--/.test(label));
/** A public-looking http(s) URL: resolved by the fake resolver to a public address, never contacted. */
const validUrl = fc
  .record({
    scheme: fc.constantFrom('http', 'https'),
    labels: fc.array(hostLabel, { minLength: 1, maxLength: 3 }),
    domain: fc.constantFrom('example.com', 'example.org', 'example.net', 'EXAMPLE.com'),
    port: fc.option(fc.integer({ min: 1, max: 65_535 }), { nil: undefined }),
    path: fc.webPath(),
    query: fc.option(fc.webQueryParameters(), { nil: undefined }),
  })
  .map(
    ({ scheme, labels, domain, port, path, query }) =>
      `${scheme}://${[...labels, domain].join('.')}${port === undefined ? '' : `:${port}`}${path}${query === undefined ? '' : `?${query}`}`,
  )
  .filter((url) => url.length <= 2048);

const bodyHooks: Hooks = {
  override(path, schema) {
    if (isUrlSchema(schema)) return validUrl;
    if (HEADER_FIELDS.some((field) => path === join(field, KEY))) return headerName;
    return undefined;
  },
  adjust(path, arbitrary) {
    // Two names differing only in case are one header: a valid set names each header once.
    if (HEADER_FIELDS.includes(path)) return arbitrary.filter((value) => !isPlainObject(value) || uniqueIgnoringCase(value));
    return arbitrary;
  },
};

/** An empty payload, as a GET or DELETE callback (which sends no body) takes it (task-input.ts). */
const isEmptyPayload = (value: unknown): boolean =>
  value === undefined || value === null || (isPlainObject(value) && Object.keys(value).length === 0);
const BODILESS_METHODS = ['GET', 'DELETE'];

/** A valid create body, generated from CreateTaskBody: a GET or DELETE carries no payload. */
const validBody = (arbitraryFor(BODY_SCHEMA, bodyHooks) as fc.Arbitrary<Record<string, unknown>>).map((body) => {
  if (!BODILESS_METHODS.includes(body.method as string) || isEmptyPayload(body.payload)) return body;
  const { payload: _dropped, ...rest } = body;
  return rest;
});

/** Private, loopback, link-local, metadata and other special addresses, in many spellings. */
const SPECIAL_ADDRESS_URLS = [
  'http://127.0.0.1/',
  'http://127.0.0.1:8233/api',
  'http://[::1]/',
  'http://10.0.0.1/',
  'http://169.254.169.254/latest/meta-data/',
  'http://[fd00::1]/',
  'http://[fe80::1]/',
  'http://[::ffff:127.0.0.1]/',
  'http://[::ffff:a9fe:a9fe]/',
  'http://[::]/',
  'http://0.0.0.0/',
  'http://0/',
  'http://127.1/',
  'http://0x7f000001/',
  'http://2130706433/',
  'http://017700000001/',
  'http://192.168.0.1/',
  'http://172.16.0.1/',
  'http://100.64.0.1/',
  'http://224.0.0.1/',
  'http://255.255.255.255/',
  'http://localhost/',
  'http://LOCALHOST:3000/',
  'http://localhost./',
  'http://api.localhost/',
  'http://[64:ff9b::7f00:1]/',
  'http://[2002:7f00:1::]/',
];

/** URLs the create-time checks must refuse. */
const badUrl: fc.Arbitrary<string> = fc.oneof(
  // credentials
  fc
    .tuple(validUrl, fc.stringMatching(/^[a-z0-9]{1,8}$/), fc.option(fc.stringMatching(/^[a-z0-9]{1,8}$/)))
    .map(([url, user, pass]) => url.replace('://', `://${user}${pass === null ? '' : `:${pass}`}@`)),
  // a non-empty fragment
  fc
    .tuple(
      validUrl,
      fc.webFragments().filter((f) => f !== ''),
    )
    .map(([url, fragment]) => `${url}#${fragment}`),
  // other schemes
  fc
    .tuple(
      fc.constantFrom('ftp', 'file', 'javascript', 'data', 'ws', 'wss', 'gopher', 'mailto', 'ldap', 'dict', 'x-custom'),
      validUrl,
    )
    .map(([scheme, url]) => url.replace(/^https?/, scheme)),
  fc.constantFrom('javascript:alert(1)', 'data:text/plain,hi', 'file:///etc/passwd', 'mailto:a@example.com', 'about:blank'),
  fc.constantFrom(...SPECIAL_ADDRESS_URLS),
  fc
    .tuple(fc.constantFrom('10', '127'), fc.nat(255), fc.nat(255), fc.nat(255))
    .map(([a, b, c, d]) => `http://${a}.${b}.${c}.${d}/`),
  fc.tuple(fc.nat(255), fc.nat(255)).map(([c, d]) => `https://192.168.${c}.${d}:8443/x`),
  // names the (fake) DNS resolves to private addresses only
  fc.tuple(hostLabel, fc.webPath()).map(([label, path]) => `https://${label}.internal.test${path}`),
  // not absolute URLs at all
  fc.constantFrom(
    'not a url',
    '/relative/path',
    'example.com/x',
    '//example.com/x',
    'http://',
    'https://',
    'http://[::1',
    'http://exa mple.com/',
  ),
  fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !URL.canParse(s)),
  // a host longer than DNS allows, and a URL longer than the schema allows
  fc.integer({ min: 126, max: 500 }).map((labels) => `https://${Array.from({ length: labels }, () => 'a').join('.')}.com/`),
  validUrl.map((url) => `${url.replace(/\?.*$/, '')}?q=${'x'.repeat(2_100)}`),
);

/** Header names a caller may not send: reserved ones (any case) and ones that are not HTTP tokens. */
const badHeaderName: fc.Arbitrary<string> = fc.oneof(
  fc.mixedCase(fc.constantFrom(...RESERVED_EXACT)),
  fc
    .tuple(fc.constantFrom('content-', 'webhook-', 'asyncqueue-', 'Content-', 'Webhook-', 'AsyncQueue-'), headerName)
    .map(([p, n]) => p + n),
  fc.string({ maxLength: 24 }).filter((name) => !TOKEN.test(name) && !POISON_KEYS.has(name)),
  fc.constantFrom('', 'bad name', 'x:y', 'a\r\nb', 'ümlaut', 'x\u0000', '(comment)', 'a/b', 'a"b'),
);

/** The create request's own headers, from CreateTaskHeaders: the idempotency key. */
const HEADERS_SCHEMA = JSON.parse(JSON.stringify(CreateTaskHeaders)) as JsonSchema;
const IDEMPOTENCY_HEADER =
  Object.keys(HEADERS_SCHEMA.properties ?? {}).find((name) => /idempotency/i.test(name)) ?? 'idempotency-key';
/** How messages name it. */
const IDEMPOTENCY_HEADER_NAME = 'Idempotency-Key';
/** 1–255 visible ASCII characters; a counter keeps each run's keys unique (shrinking replays cases). */
let keyCounter = 0;
const idempotencyKey = fc.stringMatching(/^[\x21-\x7e]{1,200}$/).map((key) => `${key}~${++keyCounter}`);
/** Keys the API must refuse: empty, too long, or with characters that are not visible ASCII (fetch can send). */
const badIdempotencyKey: fc.Arbitrary<string> = fc.oneof(
  fc.constant(''),
  fc.stringMatching(/^[\x21-\x7e]{256,300}$/),
  fc
    .tuple(
      fc.stringMatching(/^[\x21-\x7e]{1,10}$/),
      fc.constantFrom(' ', '\t', '\u00e9', '\u00ff', '\u0080'),
      fc.stringMatching(/^[\x21-\x7e]{1,10}$/),
    )
    .map(([a, bad, b]) => a + bad + b),
);

// ---------------------------------------------------------------------------------------------
// Requests, expectations and the checks every answer must pass.
// ---------------------------------------------------------------------------------------------

const API_KEY = 'property-key-0123456789abcdef';
const BODY_LIMIT = 65_536;

type Outcome =
  | { status: 200 | 202 }
  | { status: 400; field: string; nested?: boolean }
  | { status: 401 | 404 | 409 | 413 | 415; code: string };

interface Case {
  what: string;
  method: 'GET' | 'POST';
  path: string;
  /** The request body as sent (raw text). */
  raw?: string;
  /** Content-Type; null sends none. Default: application/json when there is a body. */
  contentType?: string | null;
  /** Authorization header; null sends none. Default: the valid key. */
  authorization?: string | null;
  /** Other request headers (Idempotency-Key). */
  headers?: Record<string, string>;
  expect: Outcome[];
}

interface Reply {
  status: number;
  text: string;
  body: any;
}

let harness: Harness;
/** Task ids of every 202 this file received. */
const accepted: string[] = [];

async function send(c: Case): Promise<Reply> {
  const headers: Record<string, string> = { ...c.headers };
  const authorization = c.authorization === undefined ? `Bearer ${API_KEY}` : c.authorization;
  if (authorization !== null) headers.authorization = authorization;
  const contentType = c.contentType === undefined ? (c.raw !== undefined ? 'application/json' : null) : c.contentType;
  if (contentType !== null) headers['content-type'] = contentType;
  const response = await fetch(`${harness.baseUrl}${c.path}`, {
    method: c.method,
    headers,
    // Bytes, so that fetch adds no Content-Type of its own.
    ...(c.raw !== undefined ? { body: Buffer.from(c.raw, 'utf8') } : {}),
  });
  const text = await response.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (
    response.status === 202 &&
    c.method === 'POST' &&
    c.path === '/v1/tasks' &&
    isPlainObject(body) &&
    typeof body.id === 'string'
  ) {
    accepted.push(body.id);
  }
  return { status: response.status, text, body };
}

const clip = (text: string, max = 600): string => (text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text);

function describeCase(c: Case, reply: Reply): string {
  return [
    c.what,
    `  request:  ${c.method} ${clip(c.path, 300)}${c.contentType !== undefined ? ` [content-type: ${c.contentType}]` : ''}${
      c.authorization !== undefined ? ` [authorization: ${c.authorization}]` : ''
    }${c.headers !== undefined ? ` ${JSON.stringify(c.headers)}` : ''}`,
    ...(c.raw !== undefined ? [`  body:     ${clip(c.raw)}`] : []),
    `  expected: ${JSON.stringify(c.expect)}`,
    `  response: ${reply.status} ${clip(reply.text)}`,
  ].join('\n');
}

const ERROR_CODES: Record<number, string[]> = {
  400: ['invalid_request', 'invalid_json'],
  401: ['unauthorized'],
  404: ['task_not_found', 'not_found'],
  409: ['idempotency_key_reused'],
  413: ['payload_too_large'],
  429: ['rate_limited'],
  415: ['unsupported_media_type'],
};

function matches(outcome: Outcome, reply: Reply): boolean {
  if (reply.status !== outcome.status) return false;
  if ('code' in outcome) return reply.body.error.code === outcome.code;
  if ('field' in outcome) {
    const message: string = reply.body.error.message;
    return (
      message.startsWith(`${outcome.field}:`) ||
      // A field inside it: `headers.x-trace`, or an array item, `labels[2]`.
      (outcome.nested === true && (message.startsWith(`${outcome.field}.`) || message.startsWith(`${outcome.field}[`)))
    );
  }
  return true;
}

/**
 * The invariants every answer keeps, then the case's own expectation. (The shape of 2xx bodies is
 * Schemathesis's to check, against the document.)
 */
function check(c: Case, reply: Reply): void {
  const context = describeCase(c, reply);
  assert.ok(reply.status < 500, `a 5xx answer\n${context}`);
  if (reply.status >= 400) {
    assert.ok(isPlainObject(reply.body) && Object.keys(reply.body).join() === 'error', `error shape\n${context}`);
    const error = reply.body.error as unknown;
    assert.ok(isPlainObject(error), `error shape\n${context}`);
    assert.equal(typeof error.code, 'string', `error.code\n${context}`);
    assert.equal(typeof error.message, 'string', `error.message\n${context}`);
    assert.ok(
      (ERROR_CODES[reply.status] ?? []).includes(error.code as string),
      `unexpected code for ${reply.status}\n${context}`,
    );
    if (reply.status === 400) {
      // Whatever the case, a 400 names some field first: "<field>: <what is wrong>".
      assert.ok((error.message as string).includes(': '), `a 400 must start with "<field>: "\n${context}`);
      if (error.code === 'invalid_json')
        assert.ok((error.message as string).startsWith('body: '), `invalid JSON names the body\n${context}`);
    }
  }
  assert.ok(
    c.expect.some((outcome) => matches(outcome, reply)),
    `unexpected answer\n${context}`,
  );
}

async function run(c: Case): Promise<Reply> {
  const reply = await send(c);
  check(c, reply);
  return reply;
}

function containsPoison(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(containsPoison);
  if (!isPlainObject(value)) return false;
  return Object.entries(value).some(
    ([key, inner]) =>
      key === '__proto__' || (key === 'constructor' && isPlainObject(inner) && 'prototype' in inner) || containsPoison(inner),
  );
}

/**
 * A create request for `body` (or `extra.raw`), expecting the mutation's outcome unless an earlier
 * stage refuses first: the media type (415), then the size (413), then the JSON parser (`body:`).
 */
function createCase(what: string, body: unknown, expect: Outcome[], extra: Partial<Case> = {}): Case {
  const raw = extra.raw ?? JSON.stringify(body);
  const json =
    extra.contentType === undefined || (extra.contentType !== null && /^application\/json\s*(;|$)/i.test(extra.contentType));
  let outcome = expect;
  // `__proto__`/`constructor` keys are either data (then the schema judges them) or refused as a whole.
  if (json && extra.raw === undefined && containsPoison(body)) outcome = [...expect, { status: 400, field: 'body' }];
  if (json && Buffer.byteLength(raw) > BODY_LIMIT) outcome = [{ status: 413, code: 'payload_too_large' }];
  return { what, method: 'POST', path: '/v1/tasks', raw, expect: outcome, ...extra };
}

const rejectedAt = (field: string, nested = false): Outcome[] => [{ status: 400, field, nested }];

// ---------------------------------------------------------------------------------------------
// Mutations of a valid body. Each changes one thing and says which field a rejection must name.
// ---------------------------------------------------------------------------------------------

function mutations(body: Record<string, unknown>): fc.Arbitrary<Case> {
  const withField = (field: string, value: unknown): Record<string, unknown> => ({ ...body, [field]: value });
  const headerField = HEADER_FIELDS[0];
  const arbitraries: fc.Arbitrary<Case>[] = [];
  /** URL and header mutations (the security-relevant checks) are drawn three times as often. */
  const weighty = new Set<fc.Arbitrary<Case>>();
  const pushWeighty = (arbitrary: fc.Arbitrary<Case>): void => {
    weighty.add(arbitrary);
    arbitraries.push(arbitrary);
  };

  if (REQUIRED.length > 0) {
    arbitraries.push(
      fc.constantFrom(...REQUIRED).map((field) => {
        const { [field]: _dropped, ...rest } = body;
        return createCase(`drop required ${field}`, rest, rejectedAt(field));
      }),
    );
  }

  // A value of the wrong JSON type or shape, for every field that constrains its value.
  const constrained = BODY_FIELDS.filter(
    ([, s]) => types(s) !== undefined || s.anyOf !== undefined || 'const' in s || s.enum !== undefined,
  );
  arbitraries.push(
    fc.constantFrom(...constrained).chain(([field, schema]) =>
      fc
        .jsonValue({ maxDepth: 2 })
        .filter((value) => !validates(schema, value))
        .map((value) => createCase(`wrong value for ${field}`, withField(field, value), rejectedAt(field, true))),
    ),
  );

  // In-type violations of the schema's constraints: ranges, lengths, counts, a record's values.
  const violating = BODY_FIELDS.flatMap(([field, schema]) =>
    violationsFor(schema, bodyHooks, field).map((arbitrary) =>
      arbitrary.map((v) => createCase(`constraint violation at ${v.field}`, withField(field, v.value), rejectedAt(v.field))),
    ),
  );
  arbitraries.push(fc.oneof(...violating));

  // A payload with a method that sends no body.
  arbitraries.push(
    fc
      .tuple(
        fc.constantFrom(...BODILESS_METHODS),
        fc.jsonValue({ maxDepth: 2 }).filter((value) => !isEmptyPayload(value)),
      )
      .map(([method, payload]) => createCase(`payload with ${method}`, { ...body, method, payload }, rejectedAt('payload'))),
  );

  // A property the schema does not know.
  arbitraries.push(
    fc
      .tuple(
        fc.oneof(
          fc.string({ maxLength: 24 }),
          fc.constantFrom('callbackURL', 'Retries', 'callback_url', 'id', 'status', 'webhookurl', 'headers '),
        ),
        fc.jsonValue({ maxDepth: 2 }),
      )
      .filter(([key]) => !(key in (BODY_SCHEMA.properties ?? {})) && !POISON_KEYS.has(key))
      .map(([key, value]) => createCase(`unknown property ${JSON.stringify(key)}`, withField(key, value), rejectedAt(key))),
  );

  // URL fields: credentials, fragments, other schemes, private destinations, not URLs.
  if (URL_FIELDS.length > 0) {
    pushWeighty(
      fc
        .tuple(fc.constantFrom(...URL_FIELDS), badUrl)
        .map(([field, url]) => createCase(`bad URL in ${field}`, withField(field, url), rejectedAt(field))),
    );
  }

  // Headers: reserved or malformed names, CR/LF/NUL in values, non-string values, case-duplicates.
  if (headerField !== undefined) {
    const existing = isPlainObject(body[headerField]) ? (body[headerField] as Record<string, unknown>) : {};
    const plus = (name: string, value: unknown): Record<string, unknown> =>
      Object.fromEntries([...Object.entries(existing).filter(([n]) => n.toLowerCase() !== name.toLowerCase()), [name, value]]);
    const headerCase = (what: string, name: string, headers: Record<string, unknown>): Case =>
      createCase(`${what} ${JSON.stringify(name)}`, withField(headerField, headers), rejectedAt(join(headerField, name)));
    pushWeighty(
      fc.oneof(
        fc
          .tuple(badHeaderName, fc.string({ maxLength: 20 }))
          .map(([name, value]) => headerCase('header name', name, plus(name, value))),
        fc
          .tuple(
            headerName,
            fc.string({ maxLength: 10 }),
            fc.constantFrom('\r', '\n', '\r\n', '\0', '\r\nX-Injected: 1', '\n\n<html>'),
            fc.string({ maxLength: 10 }),
          )
          .map(([name, before, bad, after]) =>
            headerCase('CR/LF/NUL in the value of header', name, plus(name, before + bad + after)),
          ),
        fc
          .tuple(
            headerName,
            fc.jsonValue({ maxDepth: 1 }).filter((v) => typeof v !== 'string'),
          )
          .map(([name, value]) => headerCase('non-string value of header', name, plus(name, value))),
        fc
          .tuple(
            headerName.filter((n) => n.toLowerCase() !== n.toUpperCase()),
            fc.string({ maxLength: 8 }),
          )
          .map(([name, value]) => {
            const twin = name === name.toLowerCase() ? name.toUpperCase() : name.toLowerCase();
            const headers = Object.fromEntries([
              ...Object.entries(plus(name, value)).filter(([n]) => n.toLowerCase() !== name.toLowerCase()),
              [name, value],
              [twin, value],
            ]);
            return headerCase('the same header twice, as', twin, headers);
          }),
      ),
    );
  }

  // Not an object at all.
  arbitraries.push(
    fc
      .jsonValue({ maxDepth: 2 })
      .filter((value) => !isPlainObject(value))
      .map((value) => createCase(`a body that is not an object: ${typeof value}`, value, rejectedAt('body'))),
  );

  // A valid body without the right key: refused before anything else, and starts nothing.
  arbitraries.push(
    fc
      .constantFrom<string | null>(
        null,
        'Bearer wrong-key',
        `Basic ${Buffer.from(`x:${API_KEY}`).toString('base64')}`,
        'Bearer',
        `Bearer ${API_KEY}x`,
        API_KEY,
      )
      .map((authorization) => ({
        ...createCase('a valid body without a valid key', body, []),
        authorization,
        expect: [{ status: 401, code: 'unauthorized' }],
      })),
  );

  // A bad Idempotency-Key (CreateTaskHeaders): refused, naming the header.
  arbitraries.push(
    badIdempotencyKey.map((key) => ({
      ...createCase(`Idempotency-Key ${JSON.stringify(key)}`, body, rejectedAt(IDEMPOTENCY_HEADER_NAME)),
      headers: { [IDEMPOTENCY_HEADER]: key },
    })),
  );

  // Over the body limit.
  arbitraries.push(
    fc
      .integer({ min: BODY_LIMIT, max: BODY_LIMIT * 4 })
      .map((size) =>
        createCase(`a ${size}-byte payload`, { ...body, payload: { blob: 'x'.repeat(size) } }, [
          { status: 413, code: 'payload_too_large' },
        ]),
      ),
  );

  return fc.oneof(...arbitraries.map((arbitrary) => ({ arbitrary, weight: weighty.has(arbitrary) ? 3 : 1 })));
}

/** Raw text that is not the JSON body the API wants, and bodies in other media types. */
function rawCases(body: Record<string, unknown>): fc.Arbitrary<Case> {
  const json = JSON.stringify(body);
  const malformed = (what: string, raw: string): Case => createCase(what, undefined, rejectedAt('body'), { raw });
  return fc.oneof(
    // truncated JSON (including the empty body)
    fc.nat(json.length - 1).map((n) => malformed(`JSON cut at ${n}`, json.slice(0, n))),
    // junk inserted
    fc
      .tuple(
        fc.nat(json.length),
        fc.constantFrom('{', '}', '[', ']', ',', ':', '"', '\\', 'x', "'", '\u0000', 'NaN', 'undefined', '//'),
      )
      .map(([at, junk]) => json.slice(0, at) + junk + json.slice(at))
      .filter((raw) => {
        try {
          JSON.parse(raw);
          return false;
        } catch {
          return true;
        }
      })
      .map((raw) => malformed('junk in the JSON', raw)),
    fc
      .constantFrom(
        '{',
        '}',
        '[',
        'nul',
        'tru',
        '{"callbackUrl": ',
        "{'callbackUrl': 'https://a.example.com/'}",
        '\uFEFF{',
        '{"a":1}x',
        ' ',
      )
      .map((raw) => malformed('malformed JSON', raw)),
    // prototype-poisoning keys: refused as a whole (`body:`), or taken as data the schema then judges
    fc
      .constantFrom<[string, Outcome[]]>(
        [`"__proto__":{"polluted":1}`, rejectedAt('__proto__')],
        [`"constructor":{"prototype":{"polluted":1}}`, rejectedAt('constructor')],
        [`"headers":{"__proto__":{"x":"y"}}`, rejectedAt('headers.__proto__')],
        // "__proto__" is a valid header name: a header like any other
        [`"headers":{"__proto__":"y"}`, [{ status: 202 }]],
        [`"payload":{"__proto__":{"polluted":1},"constructor":{"prototype":{}}}`, [{ status: 202 }]],
      )
      .map(([member, expect]) =>
        createCase(`prototype-poisoning key: ${member}`, undefined, [...expect, ...rejectedAt('body')], {
          raw: `{"callbackUrl":${JSON.stringify(body.callbackUrl)},${member}}`,
        }),
      ),
    // deeply nested payloads (any JSON is a valid payload): accepted or refused, never a crash
    fc
      .tuple(
        fc.constantFrom('[', '{"a":'),
        fc.oneof(fc.integer({ min: MAX_PAYLOAD_DEPTH - 2, max: MAX_PAYLOAD_DEPTH + 2 }), fc.integer({ min: 1, max: 30_000 })),
      )
      .map(([open, depth]) =>
        createCase(
          `payload nested ${depth} deep`,
          undefined,
          depth <= MAX_PAYLOAD_DEPTH ? [{ status: 202 }] : rejectedAt('payload'),
          {
            raw: `{"callbackUrl":${JSON.stringify(body.callbackUrl)},"payload":${open.repeat(depth)}1${(open === '[' ? ']' : '}').repeat(depth)}}`,
          },
        ),
      ),
    // numbers JSON can write but no integer field can hold
    fc
      .tuple(
        fc.constantFrom('retries', 'timeout', 'delay'),
        fc.constantFrom('1e400', '-1e400', '1.0000000000000001e2', '3.0e-400', '100000000000000000000000'),
      )
      .map(([field, number]) =>
        createCase(
          `${field} = ${number}`,
          undefined,
          validates(BODY_SCHEMA.properties?.[field] ?? {}, JSON.parse(number)) ? [{ status: 202 }] : rejectedAt(field),
          { raw: `{"callbackUrl":${JSON.stringify(body.callbackUrl)},"${field}":${number}}` },
        ),
      ),
    // other media types: refused before the body is read
    fc
      .constantFrom(
        'text/plain',
        'text/plain; charset=utf-8',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/xml',
        'application/octet-stream',
        'text/json',
        'application/jsonx',
        'application/json-patch+json',
        'image/png',
        '*/*',
        'application',
      )
      .map((contentType) =>
        createCase(`a valid body sent as ${contentType}`, body, [{ status: 415, code: 'unsupported_media_type' }], {
          contentType,
        }),
      ),
    // JSON with parameters or odd casing is still JSON: what decides is the body (here without callbackUrl)
    fc
      .constantFrom(
        'application/json; charset=utf-8',
        'application/json;charset=UTF-8',
        'Application/JSON',
        'application/json ; charset=utf-8',
      )
      .map((contentType) => {
        const { callbackUrl: _dropped, ...rest } = body;
        return createCase(`JSON without callbackUrl, as ${contentType}`, rest, rejectedAt('callbackUrl'), { contentType });
      }),
  );
}

// ---------------------------------------------------------------------------------------------
// List queries, generated from ListTasksQuery: cursors and params the schema does not know.
// (Random limits, statuses and task ids were Schemathesis's to send; api-input.test.ts names them.)
// ---------------------------------------------------------------------------------------------

const validQuery = arbitraryFor(QUERY_SCHEMA, {
  // A made-up cursor is (rightly) refused; valid list queries are generated without one.
  override: (path) => (path === 'cursor' ? fc.constant(undefined) : undefined),
}) as fc.Arbitrary<Record<string, unknown>>;

function listCase(what: string, params: Array<[string, string]>, expect: Outcome[]): Case {
  const query = new URLSearchParams(params).toString();
  return { what, method: 'GET', path: `/v1/tasks${query === '' ? '' : `?${query}`}`, expect };
}

const paramsOf = (query: Record<string, unknown>): Array<[string, string]> =>
  Object.entries(query)
    .filter(([, v]) => v !== undefined)
    // An array (`label`) is the parameter repeated, as browsers and the SDK send it.
    .flatMap(([k, v]): Array<[string, string]> => (Array.isArray(v) ? v.map((item) => [k, String(item)]) : [[k, String(v)]]));

/** Cursors derived from a real one (`real`, as issued by the API), changed in one way or another. */
function tamperedCursors(real: Buffer): fc.Arbitrary<[string, string]> {
  return fc.oneof(
    fc.tuple(fc.nat(real.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, mask]): [string, string] => {
      const bytes = Buffer.from(real);
      bytes[at] = bytes[at]! ^ mask;
      return [`byte ${at} of a real cursor changed`, bytes.toString('base64url')];
    }),
    fc
      .nat(real.length - 1)
      .map((n): [string, string] => [`a real cursor cut to ${n} bytes`, real.subarray(0, n).toString('base64url')]),
    fc
      .uint8Array({ minLength: 1, maxLength: 16 })
      .map((extra): [string, string] => [
        'a real cursor with bytes appended',
        Buffer.concat([real, extra]).toString('base64url'),
      ]),
    // its marker (the first 4 bytes) with a made-up token of any length
    fc
      .uint8Array({ minLength: 1, maxLength: 80 })
      .map((bytes): [string, string] => [
        'a made-up token behind the marker',
        Buffer.concat([real.subarray(0, 4), bytes]).toString('base64url'),
      ]),
  );
}

function queryCases(realCursor: Buffer): fc.Arbitrary<Case> {
  return validQuery.chain((query) => queryCasesFor(query, realCursor));
}

function queryCasesFor(query: Record<string, unknown>, realCursor: Buffer): fc.Arbitrary<Case> {
  const base = paramsOf(query);
  const without = (name: string) => base.filter(([k]) => k !== name);
  return fc.oneof(
    fc
      .oneof(
        fc.string({ maxLength: 40 }),
        fc.string({ unit: 'binary', maxLength: 20 }),
        fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes).toString('base64url')),
        fc.constantFrom('', 'not-a-cursor', 'YXExOg', 'aq1:', '%%%'),
        fc.constant('x'.repeat(4_097)),
      )
      .map((cursor) =>
        listCase(`cursor=${clip(JSON.stringify(cursor), 60)}`, [...base, ['cursor', cursor]], rejectedAt('cursor')),
      ),
    // A real cursor: taken (with these params or others, which may not fit it: then refused, naming it).
    fc
      .constantFrom(realCursor.toString('base64url'), realCursor.toString('base64'))
      .map((cursor) =>
        listCase(`a real cursor ${cursor}`, [...base, ['cursor', cursor]], [{ status: 200 }, ...rejectedAt('cursor')]),
      ),
    // A tampered or forged cursor: refused at once, naming the cursor (not a 503 after Temporal times out).
    tamperedCursors(realCursor).map(([what, cursor]) =>
      listCase(`${what}: ${clip(cursor, 80)}`, [...base, ['cursor', cursor]], rejectedAt('cursor')),
    ),
    fc
      .tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 8 }))
      .filter(([name]) => !(name in (QUERY_SCHEMA.properties ?? {})) && !POISON_KEYS.has(name))
      .map(([name, value]) => listCase(`unknown param ${JSON.stringify(name)}`, [...base, [name, value]], rejectedAt(name))),
    fc
      .tuple(fc.constantFrom('limit', 'status'), fc.constantFrom('5', 'pending'), fc.constantFrom('6', 'failed'))
      .map(([name, a, b]) => listCase(`${name} given twice`, [...without(name), [name, a], [name, b]], rejectedAt(name))),
  );
}

// ---------------------------------------------------------------------------------------------
// The runs.
// ---------------------------------------------------------------------------------------------

/** Task workflows only: creates with `flowControl` also start their key's limiter on the queue. */
const TASKS_QUERY = (): string => `TaskQueue = '${harness.config.taskQueue}' AND WorkflowType = '${TASK_WORKFLOW_TYPE}'`;

async function workflowIds(): Promise<string[]> {
  const ids: string[] = [];
  for await (const execution of harness.client.workflow.list({ query: TASKS_QUERY() })) ids.push(execution.workflowId);
  return ids;
}

/** Visibility is eventually consistent: wait until it shows `expected` workflows, hold, and count again. */
async function settledCount(expected: number): Promise<number> {
  const count = async () => (await harness.client.workflow.count(TASKS_QUERY())).count;
  await eventually(async () => ((await count()) >= expected ? true : undefined), { what: `${expected} workflows in visibility` });
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  return count();
}

async function assertStartedExactlyTheAccepted(): Promise<void> {
  assert.equal(await settledCount(accepted.length), accepted.length, 'workflows started ≠ requests accepted');
  assert.deepEqual((await workflowIds()).sort(), accepted.map(workflowIdForTask).sort());
}

before(async () => {
  harness = await startHarness({
    env: {
      ASYNCQUEUE_API_KEYS: API_KEY,
      ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS: 'false',
      ASYNCQUEUE_BODY_LIMIT_BYTES: String(BODY_LIMIT),
      // No worker answers queries: reads fall back to the stored view after this long.
      ASYNCQUEUE_QUERY_TIMEOUT: '0.2',
      // A request Temporal never answers fails in 2 s, not 10 (forged cursors, see the list test).
      ASYNCQUEUE_TEMPORAL_RPC_TIMEOUT: '2',
      // Input handling is what is under test: no load shedding (this process also runs the generators).
      ASYNCQUEUE_MAX_EVENT_LOOP_DELAY_MS: '0',
    },
    withoutWorker: true,
    guard: new DestinationGuard({
      allowPrivateNetworks: false,
      allowedDestinations: [],
      // No DNS: *.internal.test names resolve to private addresses, everything else to a public one.
      resolve: async (hostname) =>
        /\.internal\.test\.?$/i.test(hostname)
          ? [
              { address: '10.20.30.40', family: 4 },
              { address: 'fd00::5', family: 6 },
            ]
          : [{ address: '93.184.216.34', family: 4 }],
    }),
  });
});

after(async () => {
  await harness?.close();
  await stopOwnServer();
});

describe('create, from CreateTaskBody', () => {
  it('accepts what the schema and the API allow, and stores it as given', async () => {
    // The generator must recognise what it refines; if the schema changes shape, say so here.
    assert.ok(URL_FIELDS.includes('callbackUrl') && REQUIRED.includes('callbackUrl'), `URL fields: ${URL_FIELDS.join()}`);
    assert.equal(HEADER_FIELDS.length, 1, `header fields: ${HEADER_FIELDS.join()}`);
    const sent = new Map<string, Record<string, unknown>>();
    await fc.assert(
      fc.asyncProperty(
        validBody,
        fc.oneof({ arbitrary: fc.constant(null), weight: 3 }, { arbitrary: idempotencyKey, weight: 1 }),
        validUrl,
        async (body, key, otherUrl) => {
          const headers = key === null ? undefined : { [IDEMPOTENCY_HEADER]: key };
          const first = createCase('a valid body', body, [{ status: 202 }], headers ? { headers } : {});
          const reply = await run(first);
          if (reply.status === 202) sent.set(reply.body.id as string, body);
          if (headers === undefined) return;
          // Same key, same body: the same task (200), nothing new started.
          const again = await run({ ...first, what: 'the same body and Idempotency-Key again', expect: [{ status: 200 }] });
          assert.equal(again.body.id, reply.body.id, 'an idempotent repeat answers with the same task');
          // Same key, another body: a conflict, nothing started.
          const other = {
            ...body,
            callbackUrl: `https://other-${keyCounter}.example.net/${new URL(otherUrl).pathname.slice(1)}`,
          };
          await run({
            ...createCase('another body with a used Idempotency-Key', other, [{ status: 409, code: 'idempotency_key_reused' }]),
            headers,
          });
        },
      ),
      { numRuns: 30 },
    );
    // The list shows live tasks from their memo: every accepted task, with the values asked for.
    const seen = new Map<string, any>();
    // Visibility is eventually consistent (on a cluster, PostgreSQL's lags the start by a moment):
    // page again until every accepted task shows up, or the time runs out.
    await eventually(
      async () => {
        let cursor: string | null = null;
        for (let page = 0; page < 20 && seen.size < sent.size; page++) {
          const list: Reply = await send(
            listCase(
              'list',
              cursor === null
                ? [['limit', '100']]
                : [
                    ['limit', '100'],
                    ['cursor', cursor],
                  ],
              [{ status: 200 }],
            ),
          );
          assert.equal(list.status, 200, list.text);
          for (const task of list.body.tasks) if (sent.has(task.id)) seen.set(task.id, task);
          cursor = list.body.nextCursor;
          if (cursor === null) break;
        }
        return seen.size === sent.size ? true : undefined;
      },
      { timeoutMs: 20_000, what: 'every accepted task listed' },
    ).catch(() => undefined);
    assert.equal(seen.size, sent.size, 'every accepted task is listed');
    for (const [id, body] of sent) {
      const task = seen.get(id);
      const context = `${JSON.stringify(body)} → ${JSON.stringify(task)}`;
      assert.equal(task.callbackUrl, new URL(body.callbackUrl as string).href, context);
      assert.equal(task.webhookUrl, typeof body.webhookUrl === 'string' ? new URL(body.webhookUrl).href : null, context);
      assert.equal(task.retries, body.retries ?? 3, context);
      assert.equal(task.timeout, body.timeout ?? 30, context);
      assert.equal(task.delay, body.delay ?? 0, context);
      assert.equal(task.status, ((body.delay as number | undefined) ?? 0) > 0 ? 'scheduled' : 'pending', context);
    }
  });

  it('refuses every mutation with a 4xx naming the field, and starts nothing', async () => {
    const before = await settledCount(accepted.length);
    assert.equal(before, accepted.length);
    // Besides the random ones, every reserved header name and special address, every run.
    const fixed = { callbackUrl: 'https://fixed.example.com/run', headers: { 'X-Trace': 'abc' } };
    const examples: Array<[Case]> = [
      ...[...RESERVED_EXACT, 'content-disposition', 'Content-MD5', 'webhook-anything', 'ASYNCQUEUE-X'].map((name): [Case] => [
        createCase(
          `reserved header ${name}`,
          { ...fixed, headers: { ...fixed.headers, [name]: 'x' } },
          rejectedAt(`headers.${name}`),
        ),
      ]),
      ...URL_FIELDS.flatMap((field) =>
        SPECIAL_ADDRESS_URLS.map((url): [Case] => [
          createCase(`special address in ${field}`, { ...fixed, [field]: url }, rejectedAt(field)),
        ]),
      ),
    ];
    await fc.assert(
      fc.asyncProperty(validBody.chain(mutations), async (c) => {
        await run(c);
      }),
      { numRuns: 150, examples },
    );
    await assertStartedExactlyTheAccepted();
  });

  it('refuses malformed JSON and other media types, naming the body', async () => {
    await fc.assert(
      fc.asyncProperty(validBody.chain(rawCases), async (c) => {
        await run(c);
      }),
      { numRuns: 40 },
    );
    await assertStartedExactlyTheAccepted();
  });
});

describe('list cursors and unknown params, from ListTasksQuery', () => {
  it('takes a real cursor, refuses a made-up or tampered one at once, and a 400 names the param', async () => {
    // A cursor the API issued, to tamper with: there are tasks enough for a second page of one.
    const first = await run(listCase('one task per page', [['limit', '1']], [{ status: 200 }]));
    assert.equal(typeof first.body.nextCursor, 'string', `a second page exists: ${first.text}`);
    const realCursor = Buffer.from(first.body.nextCursor as string, 'base64url');
    const examples: Array<[Case]> = [
      [
        listCase(
          'the last bit of a real cursor flipped',
          [['cursor', tamperedCursor(first.body.nextCursor as string)]],
          rejectedAt('cursor'),
        ),
      ],
      [
        listCase(
          'a made-up token behind the marker',
          [['cursor', Buffer.concat([realCursor.subarray(0, 4), Buffer.from('{"x":1}')]).toString('base64url')]],
          rejectedAt('cursor'),
        ),
      ],
      [
        listCase(
          'a made-up token behind the marker',
          [['cursor', Buffer.concat([realCursor.subarray(0, 4), Buffer.from([0])]).toString('base64url')]],
          rejectedAt('cursor'),
        ),
      ],
    ];
    await fc.assert(
      fc.asyncProperty(queryCases(realCursor), async (c) => {
        await run(c);
      }),
      { numRuns: 50, examples },
    );
  });
});

describe('a rejected request starts nothing', () => {
  it('the task queue holds exactly the accepted tasks', async () => {
    await assertStartedExactlyTheAccepted();
  });
});
