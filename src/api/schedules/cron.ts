/**
 * Checks a 5-field cron expression (minute hour day-of-month month day-of-week) before Temporal
 * sees it, so that a 400 says which field is wrong: Temporal's own error is a generic
 * INVALID_ARGUMENT, and it accepts forms this API does not promise (6 fields, `@every`).
 */
const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] },
  // 7 is Sunday too, as in most crons.
  { name: 'day of week', min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
] as const;

/** Undefined when the expression is valid; else what is wrong with it, in words. */
export function cronProblem(expression: string): string | undefined {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 5) {
    return `must have 5 fields (minute hour day-of-month month day-of-week), not ${parts.length}`;
  }
  for (const [index, part] of parts.entries()) {
    const field = FIELDS[index]!;
    for (const item of part!.split(',')) {
      const problem = itemProblem(item, field);
      if (problem !== undefined) return `${field.name} field "${part}": ${problem}`;
    }
  }
  return undefined;
}

function itemProblem(item: string, field: (typeof FIELDS)[number]): string | undefined {
  const match = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(item);
  if (match === null) return `"${item}" is not *, a value, a range a-b, or either with /step`;
  const [, range, step] = match;
  if (step !== undefined && (Number(step) < 1 || Number(step) > field.max)) return `step ${step} is out of range`;
  if (range === '*') return undefined;
  const bounds = range!.split('-').map((value) => valueOf(value, field));
  if (bounds.some((value) => value === undefined)) {
    return `values must be ${field.min}–${field.max}${'names' in field ? ` or ${field.names[0]}–${field.names[field.names.length - 1]}` : ''}`;
  }
  if (bounds.length === 2 && bounds[0]! > bounds[1]!) return `range ${range} runs backwards`;
  return undefined;
}

function valueOf(text: string, field: (typeof FIELDS)[number]): number | undefined {
  if (/^\d+$/.test(text)) {
    const value = Number(text);
    return value >= field.min && value <= field.max ? value : undefined;
  }
  if (!('names' in field)) return undefined;
  const index = (field.names as readonly string[]).indexOf(text.toUpperCase());
  if (index < 0) return undefined;
  return field.name === 'month' ? index + 1 : index;
}

/** Whether `Intl` knows the IANA time zone (Temporal's server resolves the same names). */
export function isKnownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
