/**
 * One workflow per bulk operation (`POST /v1/tasks/bulk`): it pages through the matching tasks (a
 * visibility query, or the listed ids), one activity per page, and keeps its progress in a query
 * and its memo. Being a workflow, it survives restarts of the API, the workers and the server;
 * each page's actions are idempotent (activities/bulk-operation.ts), so a page retried after a
 * crash treats each task once. Long operations continue as new every few pages, carrying their
 * progress, so the history stays small for any number of tasks.
 */
import { ActivityFailure, continueAsNew, proxyActivities, setHandler, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { createBulkOperationActivities } from '../activities/bulk-operation.js';
import {
  MAX_OPERATION_ERRORS,
  OPERATION_MEMO_KEY,
  OPERATION_PAGE_SIZE,
  operationStateQuery,
  type BulkOperationInput,
  type OperationPageResult,
  type OperationProgress,
  type OperationState,
} from './bulk-operation-contract.js';

/** Pages per run before continuing as new: about 60 history events each, far inside the limits. */
const PAGES_PER_RUN = 20;

const { processOperationPage } = proxyActivities<ReturnType<typeof createBulkOperationActivities>>({
  startToCloseTimeout: '10 minutes',
  // A worker that dies mid-page is noticed within this; the page then runs again on another.
  heartbeatTimeout: '60 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', backoffCoefficient: 2, maximumAttempts: 20 },
});

export async function bulkOperationWorkflow(input: BulkOperationInput): Promise<OperationState> {
  const progress: OperationProgress = input.progress ?? { matched: 0, succeeded: 0, failed: 0, skipped: 0, errors: [] };
  const state: OperationState = {
    id: input.id,
    action: input.action,
    state: 'running',
    createdAt: input.createdAt,
    endedAt: null,
    ...(input.filter !== undefined ? { filter: input.filter } : {}),
    ...(input.ids !== undefined ? { ids: input.ids.length } : {}),
    matched: progress.matched,
    succeeded: progress.succeeded,
    failed: progress.failed,
    skipped: progress.skipped,
    errors: progress.errors,
  };
  setHandler(operationStateQuery, () => state);
  const publish = (): void => upsertMemo({ [OPERATION_MEMO_KEY]: state });

  const record = (page: OperationPageResult): void => {
    state.matched += page.matched;
    state.succeeded += page.succeeded;
    state.failed += page.failed;
    state.skipped += page.skipped;
    state.errors = [...state.errors, ...page.errors].slice(0, MAX_OPERATION_ERRORS);
  };

  let pageToken = progress.pageToken;
  let offset = progress.offset ?? 0;
  try {
    for (let pages = 0; ; pages++) {
      if (pages >= (input.pagesPerRun ?? PAGES_PER_RUN) || workflowInfo().continueAsNewSuggested) {
        const carried: OperationProgress = {
          matched: state.matched,
          succeeded: state.succeeded,
          failed: state.failed,
          skipped: state.skipped,
          errors: state.errors,
          ...(pageToken !== undefined ? { pageToken } : {}),
          offset,
        };
        await continueAsNew<typeof bulkOperationWorkflow>({ ...input, progress: carried });
      }
      const pageSize = input.pageSize ?? OPERATION_PAGE_SIZE;
      const ids = input.ids?.slice(offset, offset + pageSize);
      const page = await processOperationPage({
        operationId: input.id,
        action: input.action,
        policy: input.policy,
        ...(input.status !== undefined ? { status: input.status } : {}),
        ...(ids !== undefined
          ? { ids }
          : {
              query: input.query ?? '',
              pageSize,
              ...(pageToken !== undefined ? { pageToken } : {}),
            }),
      });
      record(page);
      publish();
      if (ids !== undefined) {
        offset += ids.length;
        if (offset >= (input.ids?.length ?? 0)) break;
      } else {
        if (page.nextPageToken === null) break;
        pageToken = page.nextPageToken;
      }
    }
    state.state = 'completed';
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    state.state = 'failed';
    state.error = { code: 'operation_failed', message: (err.cause ?? err).message };
  }
  state.endedAt = new Date().toISOString();
  publish();
  return state;
}
