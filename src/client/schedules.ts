/**
 * `aq.schedules`: recurring tasks on Temporal Schedules (`/v1/schedules`).
 *
 *   await aq.schedules.create({ id: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Paris', task: { callbackUrl } });
 */
import type { Static } from 'typebox';
import { allPages, pagePath, type PageOptions } from './pages.js';
import type { CreateScheduleBody, ScheduleListSchema, ScheduleViewSchema } from '../api/schedule-schemas.js';

export type CreateScheduleInput = Static<typeof CreateScheduleBody>;
export type Schedule = Static<typeof ScheduleViewSchema>;
/** One page of `aq.schedules.page()`. */
export type SchedulePage = Static<typeof ScheduleListSchema>;

/** The part of the SDK's HTTP client the schedules use. */
export interface ScheduleRequests {
  request<T>(method: string, path: string, options: { body?: unknown; retry: boolean }): Promise<T>;
}

export class Schedules {
  constructor(private readonly http: ScheduleRequests) {}

  /**
   * Creates a schedule (201). Retried on network errors only when it has an `id`: a repeat then
   * answers 409 instead of creating a second schedule.
   */
  create(schedule: CreateScheduleInput): Promise<Schedule> {
    return this.http.request<Schedule>('POST', '/v1/schedules', { body: schedule, retry: false });
  }

  get(id: string): Promise<Schedule> {
    return this.http.request<Schedule>('GET', `/v1/schedules/${encodeURIComponent(id)}`, { retry: true });
  }

  /** Every schedule, following the pages. */
  list(options: { pageSize?: number } = {}): Promise<Schedule[]> {
    return allPages(
      (page) => this.page(page),
      (page) => page.schedules,
      options.pageSize,
    );
  }

  /** One page: Temporal lists `limit` schedules (1–1,000, default 1,000), of which ours, by id. */
  page(options: PageOptions = {}): Promise<SchedulePage> {
    return this.http.request<SchedulePage>('GET', pagePath('/v1/schedules', options), { retry: true });
  }

  pause(id: string): Promise<Schedule> {
    return this.http.request<Schedule>('POST', `/v1/schedules/${encodeURIComponent(id)}/pause`, { retry: true });
  }

  resume(id: string): Promise<Schedule> {
    return this.http.request<Schedule>('POST', `/v1/schedules/${encodeURIComponent(id)}/resume`, { retry: true });
  }

  /** Starts one run now (not retried: a repeat would start another). */
  trigger(id: string): Promise<Schedule> {
    return this.http.request<Schedule>('POST', `/v1/schedules/${encodeURIComponent(id)}/trigger`, { retry: false });
  }

  /** Deletes the schedule; tasks it started go on. */
  async delete(id: string): Promise<void> {
    await this.http.request('DELETE', `/v1/schedules/${encodeURIComponent(id)}`, { retry: true });
  }
}
