/**
 * `aq.schedules`: recurring tasks on Temporal Schedules (`/v1/schedules`).
 *
 *   await aq.schedules.create({ id: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Paris', task: { callbackUrl } });
 */
import type { Static } from 'typebox';
import type { CreateScheduleBody, ScheduleViewSchema } from '../api/schedule-schemas.js';

export type CreateScheduleInput = Static<typeof CreateScheduleBody>;
export type Schedule = Static<typeof ScheduleViewSchema>;

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

  async list(): Promise<Schedule[]> {
    return (await this.http.request<{ schedules: Schedule[] }>('GET', '/v1/schedules', { retry: true })).schedules;
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
