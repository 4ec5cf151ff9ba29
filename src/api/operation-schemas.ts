/**
 * TypeBox schemas of replay, bulk actions and operations (CONTRACT v2, "Replay and bulk actions").
 */
import { Type, type Static } from 'typebox';
import { MAX_BULK_IDS, MAX_OPERATION_ERRORS } from '../../workflows/bulk-operation-contract.js';
import { MAX_LABELS } from '../../workflows/task-contract.js';
import { LabelSchema, MAX_DELAY_SECONDS, MAX_RETRIES, MAX_TIMEOUT_SECONDS, TaskStatusSchema } from './schemas.js';

/** Optional (CONTRACT): a request without a body reaches the validator as `null`. */
export const ReplayTaskBody = Type.Union([
  Type.Object(
    {
      delay: Type.Optional(
        Type.Integer({ minimum: 0, maximum: MAX_DELAY_SECONDS, description: 'seconds before the replay starts; default 0' }),
      ),
      retries: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_RETRIES, description: "default: the original's" })),
      timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_SECONDS, description: "default: the original's" })),
    },
    { additionalProperties: false },
  ),
  Type.Null(),
]);
export type ReplayTaskBody = Static<typeof ReplayTaskBody>;

export const ReplayedTaskSchema = Type.Object({
  id: Type.String(),
  status: TaskStatusSchema,
  createdAt: Type.String(),
  replayOf: Type.String({ description: 'the task replayed' }),
});

const Timestamp = (description: string) =>
  Type.String({ format: 'date-time', description, errorMessage: 'must be an RFC 3339 date-time' });

export const BulkFilterSchema = Type.Object(
  {
    status: Type.Optional(TaskStatusSchema),
    label: Type.Optional(
      Type.Union([LabelSchema, Type.Array(LabelSchema, { minItems: 1, maxItems: MAX_LABELS })], {
        description: 'a label, or several: tasks carrying all of them',
      }),
    ),
    createdAfter: Type.Optional(Timestamp('tasks created at or after this time')),
    createdBefore: Type.Optional(Timestamp('tasks created before this time')),
    flowControlKey: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        // Visible ASCII but `"` and `\\`, which Temporal's visibility queries cannot match (list-query.ts).
        pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e]+$',
        description: 'the flow-control key; a key holding `"` or `\\` cannot be selected by a filter (list them by ids)',
        errorMessage: 'must be 1–128 visible ASCII characters other than " and \\',
      }),
    ),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    description: 'every criterion given must hold; at least one is required',
  },
);
export type BulkFilter = Static<typeof BulkFilterSchema>;

const BulkAction = Type.Union([Type.Literal('cancel'), Type.Literal('replay')], {
  description: '`cancel` every matched task that has not ended; `replay` every matched task that has ended, once',
});

/** One object, not a union: a 400 then names the field that is wrong, not a branch that did not match. */
export const BulkBody = Type.Object(
  {
    action: BulkAction,
    filter: Type.Optional(BulkFilterSchema),
    ids: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
        minItems: 1,
        maxItems: MAX_BULK_IDS,
        description: `up to ${MAX_BULK_IDS} task ids; give either \`filter\` or \`ids\``,
      }),
    ),
  },
  {
    additionalProperties: false,
    // Exactly one of the two: a 400 for both or neither, as the document says.
    oneOf: [{ required: ['filter'] }, { required: ['ids'] }],
    errorMessage: 'give either filter or ids, not both',
    examples: [
      { action: 'replay', filter: { status: 'failed', label: 'customer:acme' } },
      { action: 'cancel', ids: ['0b9d6f4e-8a1c-4f0e-9d55-3f2b7f1e9c21'] },
    ],
  },
);
export type BulkBody = Static<typeof BulkBody>;

const OperationState = Type.Union([Type.Literal('running'), Type.Literal('completed'), Type.Literal('failed')]);

export const CreatedOperationSchema = Type.Object({
  id: Type.String(),
  action: BulkAction,
  state: OperationState,
  createdAt: Type.String(),
});

export const OperationViewSchema = Type.Object(
  {
    id: Type.String(),
    action: BulkAction,
    state: OperationState,
    matched: Type.Integer({ description: 'tasks the filter or the ids selected so far' }),
    succeeded: Type.Integer({ description: 'tasks cancelled (a cancel sent) or replayed' }),
    failed: Type.Integer({ description: 'tasks the action could not be applied to; see `errors`' }),
    skipped: Type.Integer({
      description: 'matched tasks with nothing to do: already ended (cancel), still running (replay), or listed twice',
    }),
    createdAt: Type.String(),
    endedAt: Type.Union([Type.String(), Type.Null()]),
    filter: Type.Optional(BulkFilterSchema),
    ids: Type.Optional(Type.Integer({ description: 'how many ids the request listed' })),
    errors: Type.Array(Type.Object({ taskId: Type.String(), code: Type.String(), message: Type.String() }), {
      description: `the first ${MAX_OPERATION_ERRORS} per-task failures`,
    }),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  },
  {
    examples: [
      {
        id: 'c0a8e3f2-5b7d-4e1a-9c3b-2d4f6a8b0c1e',
        action: 'replay',
        state: 'completed',
        matched: 42,
        succeeded: 42,
        failed: 0,
        skipped: 0,
        createdAt: '2026-11-28T10:00:00.000Z',
        endedAt: '2026-11-28T10:00:03.000Z',
        filter: { status: 'failed', label: 'customer:acme' },
        errors: [],
      },
    ],
  },
);

export const OperationParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64, description: 'the operation id a bulk request returned' }),
});

export const OperationLocationHeader = {
  location: { type: 'string' as const, required: true, description: "the operation's URL: /v1/operations/{id}" },
};
