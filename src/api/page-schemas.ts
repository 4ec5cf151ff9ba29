/** The query fields every paged list takes: `limit` and `cursor` (tasks, flow-control keys, schedules). */
import { Type } from 'typebox';
import { says } from './url-schema.js';

/** The previous page's `nextCursor`: opaque and authenticated (temporal/list-cursor.ts). */
export function cursorParam(sameAs = '') {
  return Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 4096,
      pattern: '^[A-Za-z0-9_-]+$',
      description:
        `the previous page's \`nextCursor\`, unchanged${sameAs}. Opaque and authenticated: a value this service ` +
        'did not issue is a 400.',
      ...says('is not a cursor this service returned'),
    }),
  );
}

export function limitParam(maximum: number, defaultValue: number, description?: string) {
  return Type.Optional(
    Type.Integer({ minimum: 1, maximum, default: defaultValue, ...(description !== undefined ? { description } : {}) }),
  );
}

/** A page's pointer to the next one. */
export const NextCursorSchema = Type.Union([Type.String(), Type.Null()], {
  description: 'the next page, or null after the last',
});
