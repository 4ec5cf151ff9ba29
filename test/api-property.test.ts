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
 * The requests come from support/create-request-arbitraries.ts (what to send) and
 * support/create-request-cases.ts (each change to a valid body and the answer it must get); the
 * list queries and the checks every answer must pass are here.
 *
 * No worker runs, so accepted tasks stay pending and no URL is ever contacted. The create-time
 * destination check resolves hostnames through a fake resolver (no DNS): `*.internal.test` names
 * resolve to private addresses, every other name to a public one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ListTasksQuery } from '../src/api/schemas.js';
import { DestinationGuard } from '../activities/destination-guard.js';
import { TASK_WORKFLOW_TYPE, workflowIdForTask } from '../workflows/task-contract.js';
import { eventually } from './support/eventually.js';
import { arbitraryFor, isPlainObject, type JsonSchema } from './support/schema-arbitraries.js';
import {
  HEADER_FIELDS,
  IDEMPOTENCY_HEADER,
  idempotencyKey,
  keysMade,
  POISON_KEYS,
  REQUIRED,
  RESERVED_EXACT,
  SPECIAL_ADDRESS_URLS,
  URL_FIELDS,
  validBody,
  validUrl,
} from './support/create-request-arbitraries.js';
import {
  API_KEY,
  BODY_LIMIT,
  type Case,
  createCase,
  mutations,
  type Outcome,
  rawCases,
  rejectedAt,
} from './support/create-request-cases.js';
import { startHarness, stopOwnServer, type Harness } from './support/harness.js';
import { tamperedCursor } from './support/cursors.js';

const QUERY_SCHEMA = JSON.parse(JSON.stringify(ListTasksQuery)) as JsonSchema;

// ---------------------------------------------------------------------------------------------
// Requests, expectations and the checks every answer must pass.
// ---------------------------------------------------------------------------------------------

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
            callbackUrl: `https://other-${keysMade()}.example.net/${new URL(otherUrl).pathname.slice(1)}`,
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
