/**
 * Schemas of `POST /v1/tasks/batch` (CONTRACT v2, "Batch create"). The body is validated in two
 * steps: the envelope (`tasks`, 1–100 entries) as the request's schema, so that a bad envelope is
 * a plain 400; each entry against `BatchTaskSchema` on its own (batch-create.ts), so that a bad
 * entry fails alone with a 400 result naming `tasks[i].<field>`.
 */
import { Type, type Static } from 'typebox';
import { BODILESS_METHOD_RULE, CreateTaskBody, ErrorSchema, TaskViewSchema } from '../schemas.js';

export const MAX_BATCH_TASKS = 100;

/** The same rule as the Idempotency-Key header (idempotency.ts). */
const IdempotencyKeySchema = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^[\\x21-\\x7e]+$',
  description:
    "1–255 visible ASCII characters; acts as a single create's Idempotency-Key header, in the same key space: the " +
    'same key and body give the existing task (result status 200), the same key with another body a 409 result',
  errorMessage: 'must be 1–255 visible ASCII characters',
});

/** One entry: a create body, plus its own optional idempotency key. */
export const BatchTaskSchema = Type.Object(
  { ...CreateTaskBody.properties, idempotencyKey: Type.Optional(IdempotencyKeySchema) },
  { additionalProperties: false, ...BODILESS_METHOD_RULE },
);
export type BatchTask = Static<typeof BatchTaskSchema>;

export const BatchCreateBody = Type.Object(
  {
    tasks: Type.Array(
      // Documented as the entry's schema, accepted as anything: entries are checked one by one, so
      // that one bad entry fails alone (its result is a 400) instead of failing the batch.
      Type.Union([BatchTaskSchema, Type.Unknown()], {
        description:
          'a create body (as for POST /v1/tasks) with an optional `idempotencyKey`. Checked entry by entry: an ' +
          'entry that fails gets a result with status 400 naming `tasks[i].<field>`, and nothing starts for it',
      }),
      { minItems: 1, maxItems: MAX_BATCH_TASKS },
    ),
  },
  {
    additionalProperties: false,
    examples: [
      {
        tasks: [
          { callbackUrl: 'https://your-app.com/api/run-report', payload: { jobId: 'a1' }, idempotencyKey: 'report-a1' },
          { callbackUrl: 'https://your-app.com/api/cache/a1', method: 'DELETE' },
        ],
      },
    ],
  },
);

const CreatedResult = Type.Object(
  { status: Type.Literal(202), id: Type.String(), createdAt: Type.String() },
  { description: 'the task was created and its workflow started' },
);
const ExistingResult = Type.Object(
  { status: Type.Literal(200), id: Type.String(), createdAt: Type.String(), task: TaskViewSchema },
  {
    description:
      'an idempotent repeat: the task this `idempotencyKey` and body created earlier (`task` is its view); nothing new started',
  },
);
const FailedResult = Type.Object(
  {
    status: Type.Union([Type.Literal(400), Type.Literal(409), Type.Literal(413), Type.Literal(500), Type.Literal(503)]),
    error: ErrorSchema.properties.error,
  },
  {
    description:
      'nothing started for this entry. 400 invalid (the message starts with `tasks[i].<field>`); 409 its ' +
      '`idempotencyKey` was used for another request; 413 it encodes larger than Temporal stores; 503 Temporal could ' +
      'not be reached or failed inside before it started (retry the entry; with an `idempotencyKey` that is always ' +
      'safe); 500 an unexpected error',
  },
);

export const BatchCreatedSchema = Type.Object(
  { results: Type.Array(Type.Union([CreatedResult, ExistingResult, FailedResult])) },
  {
    examples: [
      {
        results: [
          { status: 202, id: '0b9d6f4e-8a1c-4f0e-9d55-3f2b7f1e9c21', createdAt: '2026-11-28T10:00:00.000Z' },
          { status: 400, error: { code: 'invalid_request', message: 'tasks[1].payload: must be absent, null or {} …' } },
        ],
      },
    ],
  },
);
export type BatchResult = Static<typeof BatchCreatedSchema>['results'][number];
