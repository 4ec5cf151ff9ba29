/**
 * Temporal client errors, translated into the API's own (errors.ts): an unknown workflow is an
 * unknown task, an unreachable or slow server a 503, a throttled one a 503 that says so, and a
 * value over Temporal's size limits a 413 naming the field that carried it.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, isGrpcServiceError } from '@temporalio/client';
import {
  AsyncQueueError,
  PayloadTooLargeError,
  TaskNotFoundError,
  TemporalFailedError,
  TemporalThrottledError,
  TemporalUnavailableError,
} from '../../shared/errors.js';

/** gRPC status codes (the subset we translate). */
const GrpcStatus = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  FAILED_PRECONDITION: 9,
  RESOURCE_EXHAUSTED: 8,
  ABORTED: 10,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** Temporal's words for a payload, memo or request over its limits ("Blob data size exceeds limit.", …). */
const SIZE_LIMIT_MESSAGE = /size|too large|exceeds? (the )?limit/i;

export interface TranslateContext {
  /** The task the call was about: NOT_FOUND means this task is unknown. */
  taskId?: string;
  /** The request field whose value the call carried, named when Temporal finds it too large. */
  sizeField?: string;
  /** What NOT_FOUND means for a call about something else than a task (an operation). */
  notFound?: () => AsyncQueueError;
}

export function translateTemporalError(err: unknown, context: TranslateContext = {}): unknown {
  if (err instanceof AsyncQueueError) return err;
  if (err instanceof WorkflowNotFoundError && context.taskId !== undefined) return new TaskNotFoundError(context.taskId);
  if (err instanceof WorkflowNotFoundError && context.notFound !== undefined) return context.notFound();
  if (err instanceof WorkflowExecutionAlreadyStartedError) return err;
  let grpc: unknown = err;
  for (let depth = 0; grpc !== undefined && !isGrpcServiceError(grpc) && depth < 4; depth++) {
    grpc = (grpc as Error | undefined)?.cause;
  }
  if (!isGrpcServiceError(grpc)) return err;
  switch (grpc.code) {
    case GrpcStatus.NOT_FOUND:
      // Not about a task (a create, a list): what went missing is the server's (a shard moving).
      if (context.notFound !== undefined) return context.notFound();
      return context.taskId !== undefined
        ? new TaskNotFoundError(context.taskId)
        : new TemporalFailedError(`Temporal failed to serve the request (${grpc.details ?? grpc.message}); retry shortly`, {
            cause: err,
          });
    case GrpcStatus.UNAVAILABLE:
    case GrpcStatus.DEADLINE_EXCEEDED:
      return new TemporalUnavailableError('Temporal is not reachable; retry shortly', { cause: err });
    case GrpcStatus.CANCELLED:
    case GrpcStatus.INTERNAL:
    case GrpcStatus.UNKNOWN:
    case GrpcStatus.ABORTED:
    case GrpcStatus.FAILED_PRECONDITION:
      // The server answered but failed inside (the cluster fault test saw creates fail so while
      // PostgreSQL restarted): a 503 to retry, not our 500; Temporal itself is reachable.
      return new TemporalFailedError(`Temporal failed to serve the request (${grpc.details ?? grpc.message}); retry shortly`, {
        cause: err,
      });
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return new TemporalThrottledError('Temporal is throttling requests (its rate limits); retry shortly', { cause: err });
    case GrpcStatus.INVALID_ARGUMENT:
      if (SIZE_LIMIT_MESSAGE.test(grpc.details ?? grpc.message)) {
        return new PayloadTooLargeError(
          context.sizeField ?? 'body',
          `is larger than Temporal accepts (${grpc.details ?? grpc.message})`,
          { cause: err },
        );
      }
      return err;
    default:
      return err;
  }
}
