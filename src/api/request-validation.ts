/**
 * How request bodies are validated (Ajv, with the schemas' defaults and formats) and how the first
 * issue becomes a 400 message that starts with the field. The app's validator and the batch
 * create's per-item validation (batch/batch-items.ts) share them, so an item's 400 reads as a
 * single create's would.
 */
import { Ajv, type Options as AjvOptions } from 'ajv';
import ajvFormats from 'ajv-formats';

export function validatorFor(options: AjvOptions) {
  // verbose: an issue carries its schema, so a 400 can use the schema's own `errorMessage`.
  const ajv = new Ajv({ removeAdditional: false, useDefaults: true, allErrors: false, strict: false, verbose: true, ...options });
  (ajvFormats as unknown as (ajv: Ajv) => void)(ajv);
  return ajv;
}

export interface ValidationIssue {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
  /** Set when a key failed `propertyNames`. */
  propertyName?: string;
  parentSchema?: { errorMessage?: unknown };
  /** Where in the schema the check failed, e.g. `#/properties/labels/items/pattern`. */
  schemaPath?: string;
}

/** Keywords whose failure says less than the schema's own `errorMessage` (a `not`: "must NOT be valid"). */
const CUSTOM_MESSAGE_KEYWORDS = new Set(['pattern', 'format', 'not']);

/** "callbackUrl: is required", "headers.x-trace: must be string": the field first, always. */
export function validationMessage(issue: ValidationIssue, part: string | undefined): string {
  const path = issue.instancePath
    .split('/')
    .filter((segment) => segment !== '')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
  // Request headers by the name people write: Idempotency-Key, not idempotency-key.
  if (part === 'headers' && path[0] !== undefined) {
    path[0] = path[0].replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => dash + letter.toUpperCase());
  }
  if (issue.propertyName !== undefined) path.push(issue.propertyName);
  // An array item as people write it: labels[2], not labels.2. Only for arrays: a header named
  // "0" stays headers.0 (an object's key; its schema path goes through additionalProperties).
  const inArray = !/additionalProperties|patternProperties/.test(issue.schemaPath ?? '');
  const field = path.reduce(
    (joined, segment) =>
      inArray && /^\d+$/.test(segment) && joined !== ''
        ? `${joined}[${segment}]`
        : joined === ''
          ? segment
          : `${joined}.${segment}`,
    '',
  );
  // A pattern says what it wants better in the schema's words than as a regular expression.
  const custom = issue.parentSchema?.errorMessage;
  if (CUSTOM_MESSAGE_KEYWORDS.has(issue.keyword) && typeof custom === 'string' && path.length > 0) {
    return `${field}: ${custom}`;
  }
  // Fields that exclude or need each other (a bulk request's filter and ids, flow control's parallelism
  // and rate) say so in their schema's words.
  if ((issue.keyword === 'oneOf' || issue.keyword === 'anyOf') && typeof custom === 'string')
    return `${field !== '' ? field : (part ?? 'body')}: ${custom}`;
  const within = (name: string): string => (field === '' ? name : `${field}.${name}`);
  if (issue.keyword === 'required' && typeof issue.params.missingProperty === 'string') {
    return `${within(issue.params.missingProperty)}: is required`;
  }
  if (issue.keyword === 'additionalProperties' && typeof issue.params.additionalProperty === 'string') {
    return `${within(issue.params.additionalProperty)}: is not a known field`;
  }
  const named = field !== '' ? field : part === 'querystring' ? 'query' : (part ?? 'body');
  return `${named}: ${issue.message ?? 'is invalid'}`;
}
