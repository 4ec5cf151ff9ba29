/**
 * A task checked and ready to start: its workflow input, memo and idempotency hash, measured
 * against Temporal's payload limit before anything is started. Creates, batch entries and replays
 * all start through one (TaskService.start).
 */
import {
  DEFAULT_CALLBACK_METHOD,
  type CallbackMethod,
  type JsonValue,
  type TaskInput,
  type TaskMemo,
} from '../../../workflows/task-contract.js';
import { initialMemo } from '../../../workflows/task-start.js';
import type { TaskFlowControl } from '../../../workflows/flow-control-contract.js';
import { PayloadTooLargeError } from '../../shared/errors.js';
import { TEMPORAL_PAYLOAD_LIMIT_BYTES } from '../../shared/temporal-limits.js';
import { requestHash } from './idempotency.js';

/**
 * A workflow input over Temporal's payload limit is refused by the server; measured here first,
 * on the encoded input, so the answer is a 413 naming the field.
 */
const INPUT_MARGIN_BYTES = 4 * 1024;
export interface NewTask {
  callbackUrl: string;
  method: CallbackMethod;
  payload: JsonValue;
  webhookUrl: string | null;
  retries: number;
  timeout: number;
  delay: number;
  headers: Record<string, string>;
  labels: string[];
  flowControl?: TaskFlowControl;
  priority?: number;
}

/**
 * What the idempotency hash covers: the request, without a `POST` method and without empty
 * labels. Requests before `method` and `labels` existed were hashed without them, and a retry of
 * one across the upgrade must stay a retry (not a 409): a `POST` then and a `POST` now, no labels
 * then and `[]` now, are the same request.
 */
export function hashedRequest(task: NewTask): Partial<NewTask> {
  const { method, labels, ...rest } = task;
  return {
    ...rest,
    ...(method !== DEFAULT_CALLBACK_METHOD ? { method } : {}),
    ...(labels.length > 0 ? { labels } : {}),
  };
}

/** A create checked and ready to start (TaskService.prepare). */
export interface PreparedTask {
  /** What the idempotency hash covers (a create's request, or a replay's original and overrides). */
  readonly request: unknown;
  readonly idempotency: { caller: string; key: string } | undefined;
  readonly id: string;
  readonly hash: string;
  readonly input: TaskInput;
  readonly memo: TaskMemo;
  /** A create's flow-control limits become the key's (the newest wins); a replay's do not. */
  readonly setsFlowLimits: boolean;
}

export function prepareStart(
  input: TaskInput,
  request: unknown,
  idempotency: { caller: string; key: string } | undefined,
  setsFlowLimits: boolean,
): PreparedTask {
  const inputBytes = Buffer.byteLength(JSON.stringify(input));
  if (inputBytes > TEMPORAL_PAYLOAD_LIMIT_BYTES - INPUT_MARGIN_BYTES) {
    throw new PayloadTooLargeError(
      'payload',
      `the task encodes to ${inputBytes} bytes; Temporal stores at most ${TEMPORAL_PAYLOAD_LIMIT_BYTES - INPUT_MARGIN_BYTES} per task`,
    );
  }
  return { request, idempotency, id: input.id, hash: requestHash(request), input, memo: initialMemo(input), setsFlowLimits };
}
