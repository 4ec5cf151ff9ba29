/** Errors of the schedule endpoints, with stable codes (src/shared/errors.ts pattern). */
import { AsyncQueueError } from '../../shared/errors.js';

export class ScheduleNotFoundError extends AsyncQueueError {
  readonly code = 'schedule_not_found';
  override readonly statusCode = 404;
  constructor(readonly scheduleId: string) {
    super(`schedule ${scheduleId} not found`);
  }
}

export class ScheduleExistsError extends AsyncQueueError {
  readonly code = 'schedule_exists';
  override readonly statusCode = 409;
  constructor(readonly scheduleId: string) {
    super(`schedule ${scheduleId} already exists`);
  }
}
