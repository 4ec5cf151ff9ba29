/**
 * Schemas of the create fields contract v2 added that other bodies reuse (a batch entry, a
 * schedule's task, a bulk filter): the callback's method, the no-payload rule of GET and DELETE,
 * labels.
 */
import { Type } from 'typebox';
import { LABEL_PATTERN, MAX_LABELS } from '../../workflows/task-contract.js';
import { says } from './url-schema.js';

/** The callback's HTTP method (CONTRACT v2, "More create fields"); the webhook is always POST. */
export const CallbackMethodSchema = Type.Enum(['POST', 'PUT', 'PATCH', 'GET', 'DELETE'], {
  type: 'string',
  description:
    "the callback request's HTTP method. `GET` and `DELETE` send no body and no Content-Type: `payload` must then be " +
    'absent, `null` or `{}` (anything else is a 400 naming `payload`); the signature covers the empty body',
});

/**
 * `GET` and `DELETE` send no body, so their `payload` must be empty: absent, `null` or `{}`
 * (task-input.ts stores all three as `{}`). In the schema, so the document says it too; `not`
 * rather than a type list, so that the 400 is the one message below whatever the payload is.
 */
export const BODILESS_METHOD_RULE = {
  if: { properties: { method: { enum: ['GET', 'DELETE'] } }, required: ['method'] },
  then: {
    properties: {
      payload: {
        not: {
          anyOf: [
            { type: 'array' },
            { type: 'string' },
            { type: 'number' },
            { type: 'boolean' },
            { type: 'object', minProperties: 1 },
          ],
        },
        ...says('must be absent, null or {} with method GET or DELETE, which send no body'),
      },
    },
  },
};

export const LabelSchema = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: LABEL_PATTERN,
  ...says('must be 1–64 characters of A-Z a-z 0-9 . _ : = / -'),
});
export const LabelsSchema = Type.Array(LabelSchema, {
  maxItems: MAX_LABELS,
  description: `at most ${MAX_LABELS} labels, each 1–64 of \`A-Z a-z 0-9 . _ : = / -\`: shown in the view, filterable in lists (\`label\`) and bulk actions, and the \`TaskLabels\` search attribute in the Temporal UI`,
});
