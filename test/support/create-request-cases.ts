/**
 * The create requests api-property.test.ts sends and what each must get: a valid body changed in
 * one way at a time (each saying which field a 400 must name), and raw bodies the JSON parser,
 * the media type, the size limit or the API key check must refuse first.
 */
import fc from 'fast-check';
import { MAX_PAYLOAD_DEPTH } from '../../src/api/tasks/task-input.js';
import {
  BODILESS_METHODS,
  BODY_FIELDS,
  BODY_SCHEMA,
  badHeaderName,
  badIdempotencyKey,
  badUrl,
  bodyHooks,
  HEADER_FIELDS,
  headerName,
  IDEMPOTENCY_HEADER,
  IDEMPOTENCY_HEADER_NAME,
  isEmptyPayload,
  POISON_KEYS,
  REQUIRED,
  URL_FIELDS,
} from './create-request-arbitraries.js';
import { isPlainObject, join, types, validates, violationsFor } from './schema-arbitraries.js';

export const API_KEY = 'property-key-0123456789abcdef';
export const BODY_LIMIT = 65_536;

export type Outcome =
  | { status: 200 | 202 }
  | { status: 400; field: string; nested?: boolean }
  | { status: 401 | 404 | 409 | 413 | 415; code: string };

export interface Case {
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
export function createCase(what: string, body: unknown, expect: Outcome[], extra: Partial<Case> = {}): Case {
  const raw = extra.raw ?? JSON.stringify(body);
  const json =
    extra.contentType === undefined || (extra.contentType !== null && /^application\/json\s*(;|$)/i.test(extra.contentType));
  let outcome = expect;
  // `__proto__`/`constructor` keys are either data (then the schema judges them) or refused as a whole.
  if (json && extra.raw === undefined && containsPoison(body)) outcome = [...expect, { status: 400, field: 'body' }];
  if (json && Buffer.byteLength(raw) > BODY_LIMIT) outcome = [{ status: 413, code: 'payload_too_large' }];
  return { what, method: 'POST', path: '/v1/tasks', raw, expect: outcome, ...extra };
}

export const rejectedAt = (field: string, nested = false): Outcome[] => [{ status: 400, field, nested }];

// ---------------------------------------------------------------------------------------------
// Mutations of a valid body. Each changes one thing and says which field a rejection must name.
// ---------------------------------------------------------------------------------------------

export function mutations(body: Record<string, unknown>): fc.Arbitrary<Case> {
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
export function rawCases(body: Record<string, unknown>): fc.Arbitrary<Case> {
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
