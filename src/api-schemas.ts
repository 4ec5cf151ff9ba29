/**
 * TypeBox schemas for every body, parameter, query and response of the API. Fastify validates and
 * serializes with them, and the same schemas describe the API to its clients.
 */
import { Type, type Static } from 'typebox';
import type { TaskStatus } from '../workflows/task-contract.js';

export const MAX_RETRIES = 100;
export const MAX_TIMEOUT_SECONDS = 86_400;
/** A task queue for slow calls, not a scheduler: a year is a generous upper bound for `delay`. */
export const MAX_DELAY_SECONDS = 365 * 86_400;
export const MAX_HEADERS = 50;

const HttpUrl = Type.String({ minLength: 1, maxLength: 2048, description: 'http(s) URL' });

export const CreateTaskBody = Type.Object(
  {
    callbackUrl: HttpUrl,
    payload: Type.Optional(Type.Unknown({ description: 'any JSON; the body of the callback request' })),
    webhookUrl: Type.Optional(Type.Union([HttpUrl, Type.Null()])),
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_RETRIES, default: 3 })),
    timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_SECONDS, default: 30 })),
    delay: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_DELAY_SECONDS, default: 0 })),
    headers: Type.Optional(
      Type.Record(Type.String(), Type.String({ maxLength: 8192 }), { maxProperties: MAX_HEADERS, default: {} }),
    ),
  },
  {
    additionalProperties: false,
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
  'idempotency-key': Type.Optional(
    Type.String({ description: 'repeat a create safely: same key and body → the existing task (200)' }),
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
  webhookUrl: Type.Union([Type.String(), Type.Null()]),
  retries: Type.Integer(),
  timeout: Type.Integer(),
  delay: Type.Integer(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  attempts: Type.Integer({ description: 'callback attempts started' }),
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
  },
  {
    examples: [
      {
        id: '0b9d6f4e-8a1c-4f0e-9d55-3f2b7f1e9c21',
        status: 'succeeded',
        callbackUrl: 'https://your-app.com/api/run-report',
        webhookUrl: 'https://your-app.com/api/on-report-ready',
        retries: 3,
        timeout: 120,
        delay: 0,
        createdAt: '2026-11-28T10:00:00.000Z',
        updatedAt: '2026-11-28T10:00:42.000Z',
        attempts: 1,
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

export const TaskParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export const ListTasksQuery = Type.Object(
  {
    status: Type.Optional(TaskStatusSchema),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export type ListTasksQuery = Static<typeof ListTasksQuery>;

export const TaskListSchema = Type.Object({
  tasks: Type.Array(TaskViewSchema),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

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
