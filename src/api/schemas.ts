/**
 * TypeBox schemas for every body, parameter, query and response of the API. Fastify validates and
 * serializes with them, and the same schemas describe the API to its clients.
 */
import { Type, type Static, type TSchema } from 'typebox';
import type { TaskStatus } from '../../workflows/task-status.js';
import type { CallbackMethod } from '../../workflows/callback-method.js';
import { FlowControlSchema, PrioritySchema, TaskFlowControlViewSchema } from './flow-control/flow-control-schemas.js';
import { HttpUrl, anyCase, says } from './url-schema.js';
import { NextCursorSchema, cursorParam, limitParam } from './page-schemas.js';

export const MAX_RETRIES = 100;
export const MAX_TIMEOUT_SECONDS = 86_400;
/** A task queue for slow calls, not a scheduler: a year is a generous upper bound for `delay`. */
export const MAX_DELAY_SECONDS = 365 * 86_400;
export const MAX_HEADERS = 50;

/** Header names task-input.ts refuses: the transport's own, and AsyncQueue's signature and bookkeeping. */
export const RESERVED_HEADER_NAMES = [
  'host',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-connection',
];
// content-*: the body is AsyncQueue's JSON (a Content-Encoding: gzip would make it unreadable).
export const RESERVED_HEADER_PREFIXES = ['content-', 'webhook-', 'asyncqueue-'];
const CallbackHeaderName = Type.String({
  minLength: 1,
  pattern:
    `^(?!(?:${RESERVED_HEADER_NAMES.map(anyCase).join('|')})$|${RESERVED_HEADER_PREFIXES.map(anyCase).join('|')})` +
    "[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
  ...says('is not a header a task may set: an HTTP token, not host, content-*, hop-by-hop, webhook-* or asyncqueue-*'),
});
/** Visible ASCII, spaces and tabs: no CR, LF or NUL can end up on the wire. */
const CallbackHeaderValue = Type.String({
  maxLength: 8192,
  pattern: '^[\\t\\x20-\\x7e]*$',
  ...says('must be printable ASCII (tabs allowed; no CR, LF or NUL)'),
});

export { BODILESS_METHOD_RULE, CallbackMethodSchema, LabelSchema } from './create-field-schemas.js';
import { BODILESS_METHOD_RULE, CallbackMethodSchema, LabelSchema, LabelsSchema } from './create-field-schemas.js';
import { MAX_LABELS } from '../../workflows/task-contract.js';

export const CreateTaskBody = Type.Object(
  {
    callbackUrl: HttpUrl,
    method: Type.Optional({ ...CallbackMethodSchema, default: 'POST' }),
    payload: Type.Optional(Type.Unknown({ description: 'any JSON; the body of the callback request' })),
    webhookUrl: Type.Optional(Type.Union([HttpUrl, Type.Null()])),
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_RETRIES, default: 3 })),
    timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_SECONDS, default: 30 })),
    delay: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_DELAY_SECONDS, default: 0 })),
    headers: Type.Optional(
      Type.Record(Type.String(), CallbackHeaderValue, {
        propertyNames: CallbackHeaderName,
        maxProperties: MAX_HEADERS,
        default: {},
        description: 'extra headers for the callback request; each name at most once, in any case',
      }),
    ),
    labels: Type.Optional(LabelsSchema),
    flowControl: Type.Optional(FlowControlSchema),
    priority: Type.Optional(PrioritySchema),
  },
  {
    additionalProperties: false,
    ...BODILESS_METHOD_RULE,
    examples: [
      {
        callbackUrl: 'https://your-app.com/api/run-report',
        payload: { jobId: '5f1c2a', dateRange: { from: '2026-01-01', to: '2026-03-31' }, format: 'pdf' },
        webhookUrl: 'https://your-app.com/api/on-report-ready',
        retries: 3,
        timeout: 120,
      },
    ],
  },
);
export type CreateTaskBody = Static<typeof CreateTaskBody>;

export const CreateTaskHeaders = Type.Object({
  // The same rule as readIdempotencyKey (idempotency.ts), so that the document says what it checks.
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7e]+$',
      description:
        '1–255 visible ASCII characters. Repeat a create safely: the same key and body return the existing ' +
        'task (200); the same key with another body is a 409.',
      ...says('must be 1–255 visible ASCII characters'),
    }),
  ),
});

export const TaskStatusSchema = Type.Union([
  Type.Literal('scheduled'),
  Type.Literal('pending'),
  Type.Literal('running'),
  Type.Literal('retrying'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
]);
// The schema and the contract's list must name the same statuses.
const _sameStatuses: Static<typeof TaskStatusSchema> extends TaskStatus
  ? TaskStatus extends Static<typeof TaskStatusSchema>
    ? true
    : never
  : never = true;
void _sameStatuses; // a compile-time check only
const _sameMethods: Static<typeof CallbackMethodSchema> extends CallbackMethod
  ? CallbackMethod extends Static<typeof CallbackMethodSchema>
    ? true
    : never
  : never = true;
void _sameMethods;

const TaskErrorSchema = Type.Object({
  code: Type.String(),
  message: Type.String(),
  statusCode: Type.Optional(Type.Integer()),
});

const WebhookStateSchema = Type.Object({
  status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
  attempts: Type.Integer(),
  statusCode: Type.Optional(Type.Integer()),
  error: Type.Optional(Type.String()),
  deliveredAt: Type.Optional(Type.String()),
});

export const TaskViewSchema = Type.Object(
  {
    id: Type.String(),
    status: TaskStatusSchema,
    callbackUrl: Type.String(),
    method: CallbackMethodSchema,
    webhookUrl: Type.Union([Type.String(), Type.Null()]),
    retries: Type.Integer(),
    timeout: Type.Integer(),
    delay: Type.Integer(),
    createdAt: Type.String(),
    updatedAt: Type.String(),
    endedAt: Type.Optional(
      Type.String({ description: 'once the task has ended: when it reached its final status (when it failed, for `failed`)' }),
    ),
    attempts: Type.Integer({ description: 'callback attempts started' }),
    labels: Type.Array(Type.String(), { description: "the task's labels, [] when it has none" }),
    replayOf: Type.Optional(Type.String({ description: 'the task this one replays' })),
    result: Type.Optional(Type.Unknown({ description: "when succeeded: the callback's response body" })),
    error: Type.Optional(TaskErrorSchema),
    webhook: Type.Optional(WebhookStateSchema),
    nextAttemptAt: Type.Optional(Type.String()),
    lastError: Type.Optional(Type.Object({ message: Type.String() })),
    progress: Type.Optional(
      Type.Object({
        percent: Type.Optional(Type.Number()),
        message: Type.Optional(Type.String()),
        data: Type.Optional(Type.Unknown()),
        updatedAt: Type.String(),
      }),
    ),
    scheduleId: Type.Optional(Type.String({ description: 'set on the runs of a schedule: its id' })),
    priority: Type.Optional(Type.Integer({ description: '1–5; absent on tasks created before priorities existed' })),
    flowControl: Type.Optional(TaskFlowControlViewSchema),
  },
  {
    examples: [
      {
        id: '0b9d6f4e-8a1c-4f0e-9d55-3f2b7f1e9c21',
        status: 'succeeded',
        callbackUrl: 'https://your-app.com/api/run-report',
        method: 'POST',
        webhookUrl: 'https://your-app.com/api/on-report-ready',
        retries: 3,
        timeout: 120,
        delay: 0,
        createdAt: '2026-11-28T10:00:00.000Z',
        updatedAt: '2026-11-28T10:00:42.000Z',
        endedAt: '2026-11-28T10:00:42.000Z',
        attempts: 1,
        labels: ['customer:acme', 'report'],
        result: { jobId: '5f1c2a', reportUrl: 'https://files.your-app.com/5f1c2a.pdf', pageCount: 12 },
        webhook: { status: 'delivered', attempts: 1, statusCode: 200, deliveredAt: '2026-11-28T10:00:42.300Z' },
      },
    ],
  },
);

export const CreatedTaskSchema = Type.Object({
  id: Type.String(),
  status: TaskStatusSchema,
  createdAt: Type.String(),
});

export const TaskParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64, description: 'the task id a create returned' }),
});

/** `?wait=N`: 0 or absent answers at once; 1–60 waits for the task to end (task-end-watch.ts). */
export const MAX_WAIT_SECONDS = 60;
const WaitSeconds = Type.Integer({
  minimum: 0,
  maximum: MAX_WAIT_SECONDS,
  default: 0,
  description: `seconds (1–${MAX_WAIT_SECONDS}) to wait for the task to end before answering; 0 answers at once`,
});
export const ReadTaskQuery = Type.Object({ wait: Type.Optional(WaitSeconds) });
export const CreateTaskQuery = Type.Object({ wait: Type.Optional(WaitSeconds) });

export const ListTasksQuery = Type.Object(
  {
    status: Type.Optional(TaskStatusSchema),
    label: Type.Optional(
      Type.Array(LabelSchema, {
        maxItems: MAX_LABELS,
        description: 'tasks carrying this label; repeat it (`label=a&label=b`) for tasks carrying all of them',
      }),
    ),
    scheduleId: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 36,
        pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,35}$',
        description: "only the runs of this schedule (Temporal's TemporalScheduledById)",
        ...says('must be a schedule id: 1–36 letters, digits, _ or -'),
      }),
    ),
    limit: limitParam(100, 20),
    cursor: cursorParam(', with the same `status`'),
  },
  { additionalProperties: false },
);
export type ListTasksQuery = Static<typeof ListTasksQuery>;

export const TaskListSchema = Type.Object({
  tasks: Type.Array(TaskViewSchema),
  nextCursor: NextCursorSchema,
});

/** Optional (CONTRACT): a request without a body reaches the validator as `null`; api-docs.ts says so. */
export const CancelTaskBody = Type.Union([
  Type.Object({ reason: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false }),
  Type.Null(),
]);

export const ProgressBody = Type.Object(
  {
    percent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    message: Type.Optional(Type.String({ maxLength: 1000 })),
    data: Type.Optional(Type.Unknown({ description: 'any JSON, shown in the task view' })),
  },
  { additionalProperties: false, examples: [{ percent: 40, message: 'rendering page 5 of 12' }] },
);

export const CompleteBody = Type.Object(
  { result: Type.Unknown({ description: "the task's result, as a 2xx callback body would be" }) },
  { additionalProperties: false },
);

export const FailBody = Type.Object(
  {
    error: Type.Object(
      {
        message: Type.String({ minLength: 1, maxLength: 2000 }),
        code: Type.Optional(Type.String({ pattern: '^[a-z0-9_]{1,64}$' })),
      },
      { additionalProperties: false },
    ),
    retryable: Type.Optional(Type.Boolean({ default: true, description: 'false fails the task at once' })),
  },
  { additionalProperties: false },
);

export const AcceptedSchema = Type.Object({ accepted: Type.Boolean() });

export const ErrorSchema = Type.Object(
  { error: Type.Object({ code: Type.String(), message: Type.String() }) },
  { examples: [{ error: { code: 'invalid_request', message: 'retries: must be <= 100' } }] },
);

export const HealthSchema = Type.Object({ status: Type.String() });

/** A response header in the document; api-docs.ts turns `required` into the header object's own. */
export interface ResponseHeader {
  type: 'string' | 'integer';
  description: string;
  required?: boolean;
  minimum?: number;
}

/** `schema` as the response for one status: @fastify/swagger reads its description and headers. */
export function documented<T extends TSchema>(schema: T, description: string, headers?: Record<string, ResponseHeader>): T {
  return { ...schema, description, ...(headers !== undefined ? { headers } : {}) };
}

export const retryAfter: ResponseHeader = {
  type: 'integer',
  minimum: 1,
  required: true,
  description: 'seconds to wait before retrying',
};

/**
 * Error answers of the task routes. 408 and 431, which the HTTP server gives before any route
 * runs, api-docs.ts adds to every operation.
 */
export const ErrorResponses = {
  badRequest: documented(ErrorSchema, 'Invalid input: `error.message` starts with the field it is about'),
  unauthorized: documented(ErrorSchema, 'Missing or wrong API key (or task token, where one is accepted)', {
    'www-authenticate': { type: 'string', required: true, description: 'the scheme to authenticate with: Bearer' },
  }),
  notFound: documented(ErrorSchema, 'No task has this id'),
  payloadTooLarge: documented(
    ErrorSchema,
    'The body is larger than ASYNCQUEUE_BODY_LIMIT_BYTES, or a value in it encodes larger than Temporal stores or the limit for it allows (the message names the field: payload, result, data)',
  ),
  unsupportedMediaType: documented(ErrorSchema, 'The body is not application/json'),
  rateLimited: documented(ErrorSchema, "The caller's rate limit (ASYNCQUEUE_RATE_LIMIT a minute) is spent", {
    'retry-after': retryAfter,
  }),
  unavailable: documented(ErrorSchema, 'Temporal is unreachable, or the API is shedding load', {
    'retry-after': retryAfter,
  }),
  completionUnavailable: documented(
    ErrorSchema,
    'Temporal is unreachable, the API is shedding load, or the attempt has not begun to await completion yet ' +
      '(`completion_not_ready`: its callback is still answering, or a worker is taking it over): retry after Retry-After',
    { 'retry-after': retryAfter },
  ),
};

export const TaskLocationHeader: Record<string, ResponseHeader> = {
  location: { type: 'string', required: true, description: "the task's URL: /v1/tasks/{id}" },
};
