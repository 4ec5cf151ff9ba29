/**
 * What tells a schedule's runs apart in visibility. (Their memo starts as the schedule's, which
 * cannot name the run: workflows/task-memo.ts reads it as the run's.)
 */

/** Temporal's search attribute on every workflow a schedule started: the schedule's id. */
export const SCHEDULED_BY_ATTRIBUTE = 'TemporalScheduledById';
