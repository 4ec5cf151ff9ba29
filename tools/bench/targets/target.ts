/**
 * What the ramp drives: a target starts tasks (AsyncQueue's API, or raw Temporal workflows) and
 * says when each one ended, so both are measured by the same open-model steps.
 */
import { isRecord } from '../../shared/json-values.js';

export interface CreateResult {
  ok: boolean;
  id?: string;
  error?: string;
}

export interface Target {
  name: string;
  /** Starts one task (or workflow); never throws. */
  create(seq: number, stepTag: string): Promise<CreateResult>;
  /** When the task's end was observed (webhook received / no-op webhook activity ran). */
  completedAt(id: string): number | undefined;
  /** Throws when a process the target needs has died. */
  assertAlive(): void;
}

/** A short name for a failed create, counted per kind in a step's errors: the code, else the class. */
export function errorKey(err: unknown): string {
  const code = isRecord(err) && typeof err.code === 'string' ? err.code : undefined;
  const name = err instanceof Error ? err.name : 'Error';
  return code ?? name;
}
