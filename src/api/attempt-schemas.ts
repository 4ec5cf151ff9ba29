/** TypeBox schemas of `GET /v1/tasks/{id}/attempts` (CONTRACT v2, "Attempts"). */
import { Type, type Static } from 'typebox';
import { RECORDED_BODY_BYTES, type AttemptOutcomeName } from '../../workflows/attempt-record.js';

export const AttemptOutcomeSchema = Type.Union(
  [
    Type.Literal('succeeded'),
    Type.Literal('failed'),
    Type.Literal('timeout'),
    Type.Literal('network_error'),
    Type.Literal('blocked'),
    Type.Literal('cancelled'),
    Type.Literal('awaiting_completion'),
    Type.Literal('in_progress'),
  ],
  {
    description:
      '`timeout`: no complete answer within `timeout` (or, code `heartbeat_timeout` / `attempt_unrecorded`, the worker ' +
      'making it stopped); `blocked`: the destination guard refused the address; `cancelled`: cut off by a cancel; ' +
      '`awaiting_completion`: answered 202 + AsyncQueue-Completion: async and waits for /complete or /fail',
  },
);
// The schema and the contract's list must name the same outcomes.
const _sameOutcomes: Static<typeof AttemptOutcomeSchema> extends AttemptOutcomeName
  ? AttemptOutcomeName extends Static<typeof AttemptOutcomeSchema>
    ? true
    : never
  : never = true;
void _sameOutcomes; // a compile-time check only

export const AttemptSchema = Type.Object({
  kind: Type.Union([Type.Literal('callback'), Type.Literal('webhook')]),
  attempt: Type.Integer({ minimum: 1, description: 'as the request’s AsyncQueue-Attempt header said' }),
  startedAt: Type.Union([Type.String(), Type.Null()], {
    description: 'null only for an attempt that left no record (its worker stopped mid-attempt)',
  }),
  endedAt: Type.Union([Type.String(), Type.Null()], { description: 'null while the attempt is open' }),
  durationMs: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: 'null while the attempt is open' }),
  outcome: AttemptOutcomeSchema,
  statusCode: Type.Optional(Type.Integer({ description: "the answer's HTTP status, when there was an answer" })),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  response: Type.Optional(
    Type.Object({
      headers: Type.Record(Type.String(), Type.String(), {
        description: '`content-type`, `retry-after` and `x-request-id`, when the answer had them',
      }),
      body: Type.String({ description: `the first ${RECORDED_BODY_BYTES} bytes of the body, as text` }),
      truncated: Type.Boolean({ description: 'the body was longer than what is shown' }),
    }),
  ),
});

export const AttemptListSchema = Type.Object(
  { attempts: Type.Array(AttemptSchema, { description: 'oldest first: callback attempts, then webhook attempts' }) },
  {
    examples: [
      {
        attempts: [
          {
            kind: 'callback',
            attempt: 1,
            startedAt: '2026-11-28T10:00:00.120Z',
            endedAt: '2026-11-28T10:00:00.332Z',
            durationMs: 212,
            outcome: 'failed',
            statusCode: 503,
            error: { code: 'callback_http_status', message: 'callback answered 503' },
            response: { headers: { 'content-type': 'text/plain', 'retry-after': '2' }, body: 'busy', truncated: false },
          },
          {
            kind: 'callback',
            attempt: 2,
            startedAt: '2026-11-28T10:00:02.400Z',
            endedAt: '2026-11-28T10:00:02.530Z',
            durationMs: 130,
            outcome: 'succeeded',
            statusCode: 200,
            response: { headers: { 'content-type': 'application/json' }, body: '{"ok":true}', truncated: false },
          },
        ],
      },
    ],
  },
);
