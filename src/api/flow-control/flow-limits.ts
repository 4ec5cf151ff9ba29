/**
 * A key's limits from a request: the checks JSON Schema does not express well (at least one of
 * `parallelism` and `rate`), with messages that name the field.
 */
import { ValidationError } from '../../shared/errors.js';
import { DEFAULT_PERIOD_SECONDS, type FlowLimits, type TaskFlowControl } from '../../../workflows/flow-control-contract.js';
import type { FlowControlBody, FlowLimitsBody } from './flow-control-schemas.js';

export function limitsFromBody(field: string, body: FlowLimitsBody): FlowLimits {
  if (body.parallelism === undefined && body.rate === undefined) {
    throw new ValidationError(field, 'needs parallelism, rate or both');
  }
  return {
    parallelism: body.parallelism ?? null,
    rate: body.rate ?? null,
    period: body.period ?? DEFAULT_PERIOD_SECONDS,
  };
}

export function flowControlFromRequest(body: FlowControlBody): TaskFlowControl {
  const { key, ...limits } = body;
  return { key, limits: limitsFromBody('flowControl', limits) };
}
