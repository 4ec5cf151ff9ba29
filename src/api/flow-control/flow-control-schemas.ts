/** TypeBox schemas of flow control (CONTRACT v2): the create field, the key's view, PUT's body. */
import { Type, type Static } from 'typebox';
import { NextCursorSchema, cursorParam, limitParam } from '../page-schemas.js';

export const MAX_FLOW_LIMIT = 10_000;
export const MAX_PERIOD_SECONDS = 3_600;
export const MIN_PRIORITY = 1;
export const MAX_PRIORITY = 5;

/** 1–128 visible ASCII characters (no spaces). */
export const FlowKeySchema = Type.String({
  minLength: 1,
  maxLength: 128,
  pattern: '^[\\x21-\\x7e]{1,128}$',
  description: 'the flow-control key: 1–128 visible ASCII characters, no spaces',
  errorMessage: 'must be 1–128 visible ASCII characters (no spaces)',
});

const limitFields = {
  parallelism: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_FLOW_LIMIT,
      description: 'at most this many callback attempts of the key in flight at once, across every worker',
    }),
  ),
  rate: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_FLOW_LIMIT,
      description: 'at most this many callback attempts of the key start in any window of `period` seconds',
    }),
  ),
  period: Type.Optional(
    Type.Integer({ minimum: 1, maximum: MAX_PERIOD_SECONDS, default: 1, description: 'seconds; the window of `rate`' }),
  ),
};

/**
 * At least one of `parallelism` and `rate`, in the schema so that the document says it; the
 * message replaces Ajv's (app.ts).
 */
const oneLimitAtLeast = {
  anyOf: [{ required: ['parallelism'] }, { required: ['rate'] }],
  errorMessage: 'needs parallelism, rate or both',
};

export const FlowControlSchema = Type.Object(
  { key: FlowKeySchema, ...limitFields },
  {
    ...oneLimitAtLeast,
    additionalProperties: false,
    description:
      'limits shared by every task with the same key: at least one of `parallelism` and `rate`. The newest ' +
      "create or PUT naming limits sets the key's limits.",
  },
);
export type FlowControlBody = Static<typeof FlowControlSchema>;

export const PrioritySchema = Type.Integer({
  minimum: MIN_PRIORITY,
  maximum: MAX_PRIORITY,
  default: 3,
  description: 'among tasks waiting for the same flow-control key, a lower number starts first; then creation order',
});

export const FlowLimitsBody = Type.Object(limitFields, {
  ...oneLimitAtLeast,
  additionalProperties: false,
  description: 'at least one of `parallelism` and `rate`',
  examples: [{ parallelism: 5 }],
});
export type FlowLimitsBody = Static<typeof FlowLimitsBody>;

export const FlowKeyParams = Type.Object({ key: FlowKeySchema });

export const FlowKeyViewSchema = Type.Object(
  {
    key: Type.String(),
    parallelism: Type.Union([Type.Integer(), Type.Null()]),
    rate: Type.Union([Type.Integer(), Type.Null()]),
    period: Type.Integer(),
    paused: Type.Boolean(),
    inFlight: Type.Integer({ description: 'callback attempts of the key in flight (holding a slot)' }),
    waiting: Type.Integer({ description: 'tasks waiting for a slot' }),
    staged: Type.Optional(
      Type.Integer({
        description:
          'of the waiting, those staged: next in line while every slot is taken, their attempt parked in a worker, which an attempt of the key ending there hands its slot to at once (keys without a rate)',
      }),
    ),
  },
  {
    examples: [{ key: 'report-generator', parallelism: 5, rate: null, period: 1, paused: false, inFlight: 5, waiting: 12 }],
  },
);

/** The most keys one page of `GET /v1/flow-control` answers (and its default). */
export const MAX_KEYS_PER_PAGE = 1_000;

export const ListFlowKeysQuery = Type.Object(
  {
    limit: limitParam(MAX_KEYS_PER_PAGE, MAX_KEYS_PER_PAGE, 'keys per page'),
    cursor: cursorParam(),
  },
  { additionalProperties: false },
);
export type ListFlowKeysQuery = Static<typeof ListFlowKeysQuery>;

export const FlowKeyListSchema = Type.Object({
  keys: Type.Array(FlowKeyViewSchema, { description: 'the page of keys, by key' }),
  nextCursor: NextCursorSchema,
});

/** The task view's `flowControl`. */
export const TaskFlowControlViewSchema = Type.Object({
  key: Type.String(),
  waiting: Type.Boolean({ description: 'true while the task waits for a slot of its key' }),
});
