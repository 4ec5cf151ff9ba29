/** `asyncqueue tasks attempts ID`: a task's attempts as an aligned table, one line each. */
import type { Attempt } from '../client/index.js';

const COLUMNS = ['KIND', 'ATTEMPT', 'OUTCOME', 'STATUS', 'STARTED', 'DURATION', 'ERROR'] as const;
/** The error message is cut here: the table is for a glance, `--json` has everything. */
const MAX_MESSAGE = 60;

export function attemptsTable(attempts: readonly Attempt[]): string {
  if (attempts.length === 0) return 'no attempts yet';
  const rows = attempts.map((attempt) => [
    attempt.kind,
    String(attempt.attempt),
    attempt.outcome,
    attempt.statusCode !== undefined ? String(attempt.statusCode) : '-',
    attempt.startedAt ?? '-',
    attempt.durationMs !== null ? `${attempt.durationMs} ms` : '-',
    attempt.error !== undefined ? `${attempt.error.code}: ${cut(attempt.error.message)}` : '',
  ]);
  const widths = COLUMNS.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(COLUMNS), ...rows.map(line)].join('\n');
}

function cut(message: string): string {
  const oneLine = message.replace(/\s+/g, ' ');
  return oneLine.length > MAX_MESSAGE ? `${oneLine.slice(0, MAX_MESSAGE - 1)}…` : oneLine;
}
