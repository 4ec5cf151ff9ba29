/** The books as the soak prints them: one line per check, then a table per task kind and the first problems. */
import type { Books } from './books.js';
import { KIND_NAMES } from './task-mix.js';

function seconds(ms: number | null): string {
  return ms === null ? '—' : `${(ms / 1000).toFixed(2)} s`;
}

/** The dev server's line as before; a cluster's names each part it hurt. */
function faultLine(f: Books['faults']): string {
  const workers = `${f.workerSigterm} worker SIGTERM, ${f.workerSigkill} worker SIGKILL`;
  const died = `${f.workerDiedUnexpectedly} workers died by themselves`;
  if (f.historyKill + f.frontendKill + f.postgresRestart + f.clusterDiedUnexpectedly === 0)
    return `${workers}, ${f.serverKill} server kill -9; ${died}`;
  return `${workers}, ${f.historyKill} history kill -9, ${f.frontendKill} frontend kill -9, ${f.postgresRestart} PostgreSQL restart; ${died}, ${f.clusterDiedUnexpectedly} cluster processes`;
}

export function printBooks(books: Books): void {
  const rows: [string, string][] = [
    [
      'created',
      `${books.created}  (of ${books.started} started; gave up creating ${books.createGaveUp}; retried ${books.createRetried}; idempotent 200s ${books.idempotentRepeats}; key violations ${books.idempotencyViolations})`,
    ],
    ['succeeded / failed / cancelled', `${books.succeeded} / ${books.failed} / ${books.cancelled}`],
    [
      'books balance',
      books.balanced
        ? `yes: ${books.created} = ${books.succeeded} + ${books.failed} + ${books.cancelled}`
        : `NO: ${books.created} ≠ ${books.succeeded + books.failed + books.cancelled}`,
    ],
    ['stuck (not ended)', String(books.stuck)],
    ['outcome mismatches', String(books.outcomeMismatches)],
    ['cancel arrived late', `${books.cancelArrivedLate}  (cancel answers: ${JSON.stringify(books.cancelAnswers)})`],
    [
      'webhooks delivered / expected',
      `${books.webhooks.delivered} / ${books.webhooks.expected}  (${books.webhooks.firstDeliveryRefused} refused once on purpose; bad signatures ${books.webhooks.badSignatures})`,
    ],
    ['webhook duplicates (same id)', String(books.webhooks.duplicates)],
    [
      'callback duplicates',
      `${books.callbacks.duplicates} extra requests on ${books.callbacks.tasksWithDuplicates} tasks (of ${books.callbacks.requests})`,
    ],
    ['faults injected', faultLine(books.faults)],
    [
      'create → webhook p50 / p99',
      `${seconds(books.latencyMs.p50)} / ${seconds(books.latencyMs.p99)}  (max ${seconds(books.latencyMs.max)})`,
    ],
    [
      'unexpected API errors',
      `${books.apiErrors.length}${books.apiErrors.length > 0 ? `  (first: ${books.apiErrors[0]?.type}: ${books.apiErrors[0]?.message})` : ''}  answers: ${JSON.stringify(books.apiAnswers)}`,
    ],
    [
      'listed by GET /v1/tasks',
      books.listed === undefined
        ? 'could not list'
        : `${books.listed.listed} (phantom ${books.listed.phantom}, missing ${books.listed.missing})`,
    ],
    ['engine', books.run.engine],
    [
      'run',
      `${books.run.minutes} min at ${books.run.rate}/s, ${books.run.workers} workers, seed ${books.run.seed}; load ${books.run.loadSec} s, drain ${books.run.drainSec} s, total ${books.run.totalSec} s`,
    ],
    ['RESULT', books.ok ? 'PASS' : 'FAIL'],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = [
    '',
    'AsyncQueue soak — the books',
    '─'.repeat(100),
    ...rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`),
    '',
  ];
  const head = ['kind', 'created', 'succeeded', 'failed', 'cancelled', 'stuck', 'mismatch', 'p50', 'p99'];
  const table = [
    head,
    ...KIND_NAMES.map((kind) => {
      const k = books.byKind[kind];
      return [
        kind,
        k.created,
        k.succeeded,
        k.failed,
        k.cancelled,
        k.stuck,
        k.mismatches,
        seconds(k.latencyP50Ms),
        seconds(k.latencyP99Ms),
      ].map(String);
    }),
  ];
  const widths = head.map((_, column) => Math.max(...table.map((row) => (row[column] ?? '').length)));
  for (const row of table)
    lines.push(
      row
        .map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
        .join('  '),
    );
  lines.push('─'.repeat(100));
  for (const item of books.problems.slice(0, 20)) {
    lines.push(`problem: ${item.kind} task ${item.taskId ?? '(none)'} (created ${item.createStartedAt}): ${item.problem}`);
    for (const fault of item.faultsNearby) lines.push(`         near fault ${fault}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
