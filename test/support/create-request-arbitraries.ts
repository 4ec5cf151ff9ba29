/**
 * What api-property.test.ts sends to the create endpoint: valid bodies generated from the API's
 * own CreateTaskBody schema, and the URLs, callback header names and idempotency keys the API
 * must refuse (private and special addresses in many spellings, reserved headers in any case).
 */
import fc from 'fast-check';
import { CreateTaskBody, CreateTaskHeaders } from '../../src/api/schemas.js';
import { arbitraryFor, type Hooks, isPlainObject, join, type JsonSchema, KEY, recordParts } from './schema-arbitraries.js';

export const BODY_SCHEMA = JSON.parse(JSON.stringify(CreateTaskBody)) as JsonSchema;
export const BODY_FIELDS = Object.entries(BODY_SCHEMA.properties ?? {});
export const REQUIRED = BODY_SCHEMA.required ?? [];

const isUrlSchema = (schema: JsonSchema): boolean =>
  schema.type === 'string' && (/\burl\b/i.test(schema.description ?? '') || (schema as { format?: string }).format === 'uri');
/** Fields whose schema (or one of whose union branches) is the http(s) URL string. */
export const URL_FIELDS = BODY_FIELDS.filter(([, s]) => isUrlSchema(s) || (s.anyOf ?? []).some(isUrlSchema)).map(
  ([name]) => name,
);
/** Fields holding a string→string record: the callback's extra headers. */
export const HEADER_FIELDS = BODY_FIELDS.filter(([, s]) => recordParts(s) !== undefined).map(([name]) => name);

/** Keys the JSON parser refuses as prototype poisoning (tested on purpose, not by accident). */
export const POISON_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** What README promises a caller cannot set: host, content-*, hop-by-hop, webhook-*, asyncqueue-*. */
export const RESERVED_EXACT = [
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

export const headerName = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,24}$/).filter((name) => !isReservedHeader(name));
const uniqueIgnoringCase = (headers: Record<string, unknown>): boolean => {
  const lower = Object.keys(headers).map((name) => name.toLowerCase());
  return new Set(lower).size === lower.length;
};

const hostLabel = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?$/).filter((label) => !/^xn--/.test(label));
/** A public-looking http(s) URL: resolved by the fake resolver to a public address, never contacted. */
export const validUrl = fc
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

export const bodyHooks: Hooks = {
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
export const isEmptyPayload = (value: unknown): boolean =>
  value === undefined || value === null || (isPlainObject(value) && Object.keys(value).length === 0);
export const BODILESS_METHODS = ['GET', 'DELETE'];

/** A valid create body, generated from CreateTaskBody: a GET or DELETE carries no payload. */
export const validBody = (arbitraryFor(BODY_SCHEMA, bodyHooks) as fc.Arbitrary<Record<string, unknown>>).map((body) => {
  if (!BODILESS_METHODS.includes(body.method as string) || isEmptyPayload(body.payload)) return body;
  const { payload: _dropped, ...rest } = body;
  return rest;
});

/** Private, loopback, link-local, metadata and other special addresses, in many spellings. */
export const SPECIAL_ADDRESS_URLS = [
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
export const badUrl: fc.Arbitrary<string> = fc.oneof(
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
export const badHeaderName: fc.Arbitrary<string> = fc.oneof(
  fc.mixedCase(fc.constantFrom(...RESERVED_EXACT)),
  fc
    .tuple(fc.constantFrom('content-', 'webhook-', 'asyncqueue-', 'Content-', 'Webhook-', 'AsyncQueue-'), headerName)
    .map(([p, n]) => p + n),
  fc.string({ maxLength: 24 }).filter((name) => !TOKEN.test(name) && !POISON_KEYS.has(name)),
  fc.constantFrom('', 'bad name', 'x:y', 'a\r\nb', 'ümlaut', 'x\u0000', '(comment)', 'a/b', 'a"b'),
);

/** The create request's own headers, from CreateTaskHeaders: the idempotency key. */
const HEADERS_SCHEMA = JSON.parse(JSON.stringify(CreateTaskHeaders)) as JsonSchema;
export const IDEMPOTENCY_HEADER =
  Object.keys(HEADERS_SCHEMA.properties ?? {}).find((name) => /idempotency/i.test(name)) ?? 'idempotency-key';
/** How messages name it. */
export const IDEMPOTENCY_HEADER_NAME = 'Idempotency-Key';
/** 1–255 visible ASCII characters; a counter keeps each run's keys unique (shrinking replays cases). */
let keyCounter = 0;
export const idempotencyKey = fc.stringMatching(/^[\x21-\x7e]{1,200}$/).map((key) => `${key}~${++keyCounter}`);
/** How many keys `idempotencyKey` has made: a number no earlier case used. */
export const keysMade = (): number => keyCounter;
/** Keys the API must refuse: empty, too long, or with characters that are not visible ASCII (fetch can send). */
export const badIdempotencyKey: fc.Arbitrary<string> = fc.oneof(
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
