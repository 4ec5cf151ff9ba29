/** `/v1/schedules` for apps (API key): recurring tasks on Temporal Schedules (CONTRACT v2, "Schedules"). */
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { DestinationGuard } from '../../../activities/destination-guard.js';
import { ValidationError } from '../../shared/errors.js';
import {
  CreateScheduleBody,
  ListSchedulesQuery,
  ScheduleListSchema,
  ScheduleParams,
  ScheduleViewSchema,
} from '../schedule-schemas.js';
import { ErrorSchema, documented } from '../schemas.js';
import { cronProblem, isKnownTimeZone } from '../schedules/cron.js';
import { newTaskFromRequest } from '../tasks/task-input.js';
import type { NewTask } from '../tasks/task-service.js';
import { bodyErrors, conflict, errors, security } from './route-schemas.js';

const notFound = { 404: documented(ErrorSchema, 'No AsyncQueue schedule has this id') };
const NoContent = documented(Type.Null(), 'Deleted; tasks it started go on');

export const scheduleRoutes: FastifyPluginAsyncTypebox<{ guard: DestinationGuard }> = async (app, { guard }) => {
  app.post(
    '/v1/schedules',
    {
      schema: {
        summary: 'Create a schedule',
        description:
          'A Temporal Schedule (it shows on the Temporal UI’s Schedules page) that creates `task` on a 5-field `cron` ' +
          '(read in `timezone`) or `every` N seconds; exactly one of the two. Each run is an ordinary task with ' +
          '`scheduleId`, listed by `GET /v1/tasks?scheduleId=`. `overlap: skip` (default) skips a run while the ' +
          "previous run's task has not ended.",
        tags: ['schedules'],
        security,
        body: CreateScheduleBody,
        response: {
          201: documented(ScheduleViewSchema, 'The schedule was created', {
            location: { type: 'string', required: true, description: "the schedule's URL: /v1/schedules/{id}" },
          }),
          ...conflict('A schedule with this id exists'),
          ...bodyErrors,
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if ((body.cron === undefined) === (body.every === undefined)) {
        throw new ValidationError(body.cron === undefined ? 'cron' : 'every', 'give exactly one of cron and every');
      }
      if (body.cron !== undefined) {
        const problem = cronProblem(body.cron);
        if (problem !== undefined) throw new ValidationError('cron', problem);
      }
      const timezone = body.timezone ?? 'UTC';
      if (!isKnownTimeZone(timezone)) throw new ValidationError('timezone', `"${timezone}" is not an IANA time zone`);
      const task = await scheduleTask(body.task, guard);
      const view = await app.schedules.create({
        id: body.id ?? randomUUID(),
        ...(body.cron !== undefined ? { cron: body.cron.trim().split(/\s+/).join(' ') } : { every: body.every! }),
        timezone,
        task,
        paused: body.paused ?? false,
        overlap: body.overlap ?? 'skip',
      });
      request.log.info({ scheduleId: view.id }, 'schedule created');
      return reply.code(201).header('location', `/v1/schedules/${view.id}`).send(view);
    },
  );

  app.get(
    '/v1/schedules',
    {
      schema: {
        summary: 'List schedules',
        description:
          "AsyncQueue's schedules (others in the namespace are left out): pages of Temporal's list of `limit` schedules " +
          '(default and most 1,000), ours of them by id; follow `nextCursor` for the next.',
        tags: ['schedules'],
        security,
        querystring: ListSchedulesQuery,
        response: { 200: documented(ScheduleListSchema, 'A page of schedules'), ...errors },
      },
    },
    async (request) => app.schedules.list(request.query),
  );

  app.get(
    '/v1/schedules/:id',
    {
      schema: {
        summary: 'Read a schedule',
        tags: ['schedules'],
        security,
        params: ScheduleParams,
        response: { 200: documented(ScheduleViewSchema, 'The schedule view'), ...notFound, ...errors },
      },
    },
    async (request) => app.schedules.get(request.params.id),
  );

  const schemaFor = (summary: string, description: string) => ({
    summary,
    description,
    tags: ['schedules'],
    security,
    params: ScheduleParams,
  });
  app.post(
    '/v1/schedules/:id/pause',
    {
      schema: {
        ...schemaFor('Pause a schedule', 'No run starts until it is resumed; tasks already started go on.'),
        response: { 200: documented(ScheduleViewSchema, 'The schedule view, paused'), ...notFound, ...errors },
      },
    },
    async (request) => app.schedules.pause(request.params.id),
  );
  app.post(
    '/v1/schedules/:id/resume',
    {
      schema: {
        ...schemaFor('Resume a schedule', 'Runs start again at the next time the schedule names.'),
        response: { 200: documented(ScheduleViewSchema, 'The schedule view'), ...notFound, ...errors },
      },
    },
    async (request) => app.schedules.resume(request.params.id),
  );
  app.post(
    '/v1/schedules/:id/trigger',
    {
      schema: {
        ...schemaFor(
          'Run a schedule now',
          'Starts one run now, whatever `overlap` says (also while paused); it shows in `recentTaskIds` moments later.',
        ),
        response: { 202: documented(ScheduleViewSchema, 'The run was asked for; the schedule view'), ...notFound, ...errors },
      },
    },
    async (request, reply) => reply.code(202).send(await app.schedules.trigger(request.params.id)),
  );

  app.delete(
    '/v1/schedules/:id',
    {
      schema: {
        summary: 'Delete a schedule',
        tags: ['schedules'],
        security,
        params: ScheduleParams,
        response: { 204: NoContent, ...notFound, ...errors },
      },
    },
    async (request, reply) => {
      await app.schedules.delete(request.params.id);
      return reply.code(204).send(null);
    },
  );
};

/** The create checks of a task (destination guard included), each failure named under `task.`. */
async function scheduleTask(body: CreateScheduleBody['task'], guard: DestinationGuard): Promise<NewTask> {
  try {
    return await newTaskFromRequest(body, guard);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    throw new ValidationError(`task.${err.field}`, err.message.slice(err.field.length + 2));
  }
}
