/**
 * TypeBox schemas of `/v1/schedules` (CONTRACT v2, "Schedules"): the create body, the view, the
 * list. The task of a schedule is the create body of `/v1/tasks` without `delay`, so every field a
 * task takes, a schedule's task takes too.
 */
import { Type, type Static } from 'typebox';
import { BODILESS_METHOD_RULE, CreateTaskBody } from './schemas.js';
import { NextCursorSchema, cursorParam, limitParam } from './page-schemas.js';

/**
 * Letters, digits, `_` and `-`, at most 36: a run's task id is `aqs-<id>-<time>` (Temporal appends
 * the time), which must stay within a task id's 64 characters.
 */
export const SCHEDULE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,35}$';
export const ScheduleId = Type.String({
  minLength: 1,
  maxLength: 36,
  pattern: SCHEDULE_ID_PATTERN,
  description: '1–36 letters, digits, _ or -, starting with a letter or digit',
  errorMessage: 'must be 1–36 letters, digits, _ or -, starting with a letter or digit',
});

export const ScheduleTaskBody = Type.Omit(CreateTaskBody, ['delay'], {
  additionalProperties: false,
  // Omit keeps the properties, not the create body's rule that GET and DELETE carry no payload.
  ...BODILESS_METHOD_RULE,
  description: 'what each run creates: the body of POST /v1/tasks without `delay`',
});

export const OverlapSchema = Type.Union([Type.Literal('skip'), Type.Literal('allow')], {
  description: "`skip` (default): no run starts while the previous run's task has not ended; `allow`: runs may overlap",
});

export const CreateScheduleBody = Type.Object(
  {
    id: Type.Optional(ScheduleId),
    cron: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: '5 fields: minute hour day-of-month month day-of-week' }),
    ),
    every: Type.Optional(Type.Integer({ minimum: 1, maximum: 366 * 86_400, description: 'seconds between runs' })),
    timezone: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, default: 'UTC', description: 'IANA time zone the cron is read in' }),
    ),
    task: ScheduleTaskBody,
    paused: Type.Optional(Type.Boolean({ default: false })),
    overlap: Type.Optional(OverlapSchema),
  },
  {
    additionalProperties: false,
    description: 'exactly one of `cron` and `every`',
    examples: [
      {
        id: 'nightly-report',
        cron: '0 3 * * *',
        timezone: 'Europe/Paris',
        task: { callbackUrl: 'https://your-app.com/api/run-report', payload: { kind: 'nightly' }, timeout: 600 },
      },
    ],
  },
);
export type CreateScheduleBody = Static<typeof CreateScheduleBody>;

export const ScheduleViewSchema = Type.Object({
  id: Type.String(),
  cron: Type.Optional(Type.String()),
  every: Type.Optional(Type.Integer()),
  timezone: Type.String(),
  task: Type.Object(
    {
      callbackUrl: Type.String(),
      method: Type.String(),
      labels: Type.Optional(Type.Array(Type.String())),
      payload: Type.Unknown(),
      webhookUrl: Type.Union([Type.String(), Type.Null()]),
      retries: Type.Integer(),
      timeout: Type.Integer(),
      headers: Type.Record(Type.String(), Type.String()),
    },
    { additionalProperties: true },
  ),
  paused: Type.Boolean(),
  overlap: OverlapSchema,
  nextRunAt: Type.Union([Type.String(), Type.Null()], { description: 'null while paused' }),
  recentTaskIds: Type.Array(Type.String(), { description: 'the latest runs, oldest first (Temporal keeps the last 10)' }),
  createdAt: Type.String(),
});
export type ScheduleView = Static<typeof ScheduleViewSchema>;

/** The most schedules one page of `GET /v1/schedules` reads (and its default). */
export const MAX_SCHEDULES_PER_PAGE = 1_000;

export const ListSchedulesQuery = Type.Object(
  {
    limit: limitParam(
      MAX_SCHEDULES_PER_PAGE,
      MAX_SCHEDULES_PER_PAGE,
      "schedules Temporal lists per page; a page shows AsyncQueue's among them, so it may hold fewer",
    ),
    cursor: cursorParam(),
  },
  { additionalProperties: false },
);
export type ListSchedulesQuery = Static<typeof ListSchedulesQuery>;

export const ScheduleListSchema = Type.Object({
  schedules: Type.Array(ScheduleViewSchema, { description: 'the page of schedules, by id' }),
  nextCursor: NextCursorSchema,
});

export const ScheduleParams = Type.Object({ id: ScheduleId });
