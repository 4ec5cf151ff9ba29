/** `aq.operations`: the progress of bulk operations started with `aq.tasks.bulk` (`/v1/operations`). */
import type { Operation } from './types.js';
import type { ScheduleRequests } from './schedules.js';

export class Operations {
  constructor(private readonly http: ScheduleRequests) {}

  /** A bulk operation's progress: counts, first errors, `state` running until it has ended. */
  get(id: string): Promise<Operation> {
    return this.http.request<Operation>('GET', `/v1/operations/${encodeURIComponent(id)}`, { retry: true });
  }
}
