/**
 * The Temporal SDK's process-wide runtime for worker processes: its logs go to pino as structured
 * lines (with the task id where there is one), and its metrics, with AsyncQueue's own workflow and
 * activity metrics, are served in Prometheus format. Installed once, before any worker starts.
 */
import { pino, type Logger } from 'pino';
import { DefaultLogger, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';
import { WORKFLOW_ID_PREFIX } from '../../workflows/task-contract.js';

export interface WorkerRuntimeOptions {
  logLevel: string;
  /** `host:port` for the Prometheus endpoint (`/metrics`); undefined serves none. */
  metricsAddress: string | undefined;
}

export function installWorkerRuntime(options: WorkerRuntimeOptions): Logger {
  const logger = pino({ level: options.logLevel, base: { component: 'worker' } });
  // The SDK's INFO lines are mostly bundler chatter; its warnings and errors are what matter.
  const sdkLevel: LogLevel = options.logLevel === 'debug' || options.logLevel === 'trace' ? 'DEBUG' : 'WARN';
  Runtime.install({
    logger: new DefaultLogger(sdkLevel, (entry) => writeEntry(logger, entry)),
    // No signal handlers of the SDK's own: our shutdown sequence (API, worker, dev server) decides.
    shutdownSignals: [],
    ...(options.metricsAddress !== undefined
      ? {
          telemetryOptions: {
            metrics: {
              prometheus: {
                bindAddress: options.metricsAddress,
                countersTotalSuffix: true,
                unitSuffix: true,
                useSecondsForDurations: true,
              },
            },
          },
        }
      : {}),
  });
  return logger;
}

/**
 * Maps an SDK log entry onto pino, adding `taskId` to every line that is about a task, and leaving
 * out the SDK's `taskToken`: with it anyone who can reach Temporal's API can complete or fail the
 * call it names, and logs travel further than the Temporal UI does. The activity id, workflow id
 * and attempt on the same line identify the call.
 */
export function logRecord(entry: Pick<LogEntry, 'meta'>): Record<string, unknown> {
  const { taskToken: _taskToken, ...meta } = entry.meta ?? {};
  const workflowId = meta.workflowId;
  if (typeof workflowId === 'string' && workflowId.startsWith(WORKFLOW_ID_PREFIX) && meta.taskId === undefined) {
    meta.taskId = workflowId.slice(WORKFLOW_ID_PREFIX.length);
  }
  return meta;
}

function writeEntry(logger: Logger, entry: LogEntry): void {
  const level =
    entry.level === 'TRACE'
      ? 'trace'
      : entry.level === 'DEBUG'
        ? 'debug'
        : entry.level === 'INFO'
          ? 'info'
          : entry.level === 'WARN'
            ? 'warn'
            : 'error';
  logger[level](logRecord(entry), entry.message);
}
