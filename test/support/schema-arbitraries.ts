/**
 * JSON Schema → fast-check arbitraries, and a small validator for the same keywords. Generic over
 * the keywords TypeBox emits for the API's schemas; the API's semantics that JSON Schema cannot
 * express (what a URL or a header name may be) come in through hooks, keyed by the value's path.
 * Used by test/api-property.test.ts.
 */
import fc from 'fast-check';

export interface JsonSchema {
  type?: string | string[];
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  patternProperties?: Record<string, JsonSchema>;
  minProperties?: number;
  maxProperties?: number;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  const?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
}

export interface Hooks {
  /** Replaces the arbitrary for the value at `path` (record keys are at `<record>.<key>`). */
  override?(path: string, schema: JsonSchema): fc.Arbitrary<unknown> | undefined;
  /** Post-processes the arbitrary for the value at `path`. */
  adjust?(path: string, arbitrary: fc.Arbitrary<unknown>): fc.Arbitrary<unknown>;
}

/** A value's path as the API names it in messages: `headers.x-a`, `callbackUrl`. */
export const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);
export const KEY = '<key>';
export const ITEM = '*';

/** The schema a record (patternProperties or additionalProperties: schema) gives its keys and values. */
export function recordParts(schema: JsonSchema): { key: JsonSchema; value: JsonSchema } | undefined {
  const pattern = Object.entries(schema.patternProperties ?? {})[0];
  if (pattern !== undefined) return { key: { type: 'string', pattern: pattern[0] }, value: pattern[1] };
  if (typeof schema.additionalProperties === 'object') return { key: { type: 'string' }, value: schema.additionalProperties };
  return undefined;
}

export function types(schema: JsonSchema): string[] | undefined {
  return schema.type === undefined ? undefined : Array.isArray(schema.type) ? schema.type : [schema.type];
}

/** An arbitrary of values that `schema` accepts. */
export function arbitraryFor(schema: JsonSchema, hooks: Hooks = {}, path = ''): fc.Arbitrary<unknown> {
  const arbitrary = hooks.override?.(path, schema) ?? baseArbitrary(schema, hooks, path);
  return hooks.adjust ? hooks.adjust(path, arbitrary) : arbitrary;
}

export function keyArbitrary(schema: JsonSchema, hooks: Hooks, path: string): fc.Arbitrary<string> {
  return (hooks.override?.(join(path, KEY), schema) ?? baseArbitrary(schema, hooks, join(path, KEY))) as fc.Arbitrary<string>;
}

export function baseArbitrary(schema: JsonSchema, hooks: Hooks, path: string): fc.Arbitrary<unknown> {
  if ('const' in schema) return fc.constant(schema.const);
  if (schema.enum !== undefined) return fc.constantFrom(...schema.enum);
  const branches = schema.anyOf ?? schema.oneOf;
  const base = constraintOnly(schema);
  if (base !== undefined) return baseArbitrary(base, hooks, path).filter((value) => validates(schema, value));
  if (branches !== undefined) return fc.oneof(...branches.map((branch) => arbitraryFor(branch, hooks, path)));
  const type = types(schema);
  if (type === undefined) return fc.jsonValue({ maxDepth: 3 }); // {} / Unknown: any JSON
  return fc.oneof(
    ...type.map((t): fc.Arbitrary<unknown> => {
      switch (t) {
        case 'null':
          return fc.constant(null);
        case 'boolean':
          return fc.boolean();
        case 'integer':
          return fc.integer({
            min:
              schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : Number.MIN_SAFE_INTEGER),
            max:
              schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum - 1 : Number.MAX_SAFE_INTEGER),
          });
        case 'number':
          return fc
            .double({ min: schema.minimum ?? -1e300, max: schema.maximum ?? 1e300, noNaN: true, noDefaultInfinity: true })
            .filter((n) => validates(schema, n));
        case 'string': {
          const lengths = {
            minLength: schema.minLength ?? 0,
            ...(schema.maxLength !== undefined ? { maxLength: schema.maxLength } : {}),
          };
          if (schema.pattern === undefined) return fc.string(lengths);
          return fc.stringMatching(new RegExp(schema.pattern, 'u')).filter((s) => validates(schema, s));
        }
        case 'array':
          return fc.array(schema.items ? arbitraryFor(schema.items, hooks, join(path, ITEM)) : fc.jsonValue({ maxDepth: 2 }), {
            minLength: schema.minItems ?? 0,
            ...(schema.maxItems !== undefined ? { maxLength: schema.maxItems } : {}),
          });
        case 'object': {
          const properties = Object.entries(schema.properties ?? {});
          const record = recordParts(schema);
          if (properties.length === 0 && record !== undefined) {
            return fc.dictionary(keyArbitrary(record.key, hooks, path), arbitraryFor(record.value, hooks, join(path, ITEM)), {
              minKeys: schema.minProperties ?? 0,
              ...(schema.maxProperties !== undefined ? { maxKeys: schema.maxProperties } : {}),
              noNullPrototype: true,
            });
          }
          // Declared properties only (extra properties, where allowed, are optional anyway).
          const model = Object.fromEntries(properties.map(([key, s]) => [key, arbitraryFor(s, hooks, join(path, key))]));
          return fc.record(model, { requiredKeys: schema.required ?? [] } as { requiredKeys: never[] });
        }
        default:
          throw new Error(`arbitraryFor: unsupported type ${t} at ${path || '(root)'}`);
      }
    }),
  );
}

export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export function hasType(type: string, value: unknown): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isPlainObject(value);
    default:
      return typeof value === type;
  }
}

/** A small JSON Schema validator for the same keywords, used to keep mutations really invalid. */
export function validates(schema: JsonSchema, value: unknown): boolean {
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches !== undefined && !branches.some((branch) => validates(branch, value))) return false;
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(value)) return false;
  if (schema.enum !== undefined && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) return false;
  const type = types(schema);
  if (type !== undefined && !type.some((t) => hasType(t, value))) return false;
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) return false;
    if (schema.maximum !== undefined && value > schema.maximum) return false;
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) return false;
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) return false;
  }
  if (typeof value === 'string') {
    const length = [...value].length; // Ajv counts code points
    if (schema.minLength !== undefined && length < schema.minLength) return false;
    if (schema.maxLength !== undefined && length > schema.maxLength) return false;
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) return false;
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) return false;
    if (schema.maxItems !== undefined && value.length > schema.maxItems) return false;
    if (schema.items !== undefined && !value.every((item) => validates(schema.items!, item))) return false;
  }
  if (isPlainObject(value)) {
    const keys = Object.keys(value);
    if (schema.minProperties !== undefined && keys.length < schema.minProperties) return false;
    if (schema.maxProperties !== undefined && keys.length > schema.maxProperties) return false;
    if ((schema.required ?? []).some((key) => !keys.includes(key))) return false;
    for (const key of keys) {
      let matched = false;
      const declared = schema.properties?.[key];
      if (declared !== undefined) {
        matched = true;
        if (!validates(declared, value[key])) return false;
      }
      for (const [pattern, s] of Object.entries(schema.patternProperties ?? {})) {
        if (new RegExp(pattern, 'u').test(key)) {
          matched = true;
          if (!validates(s, value[key])) return false;
        }
      }
      if (!matched) {
        if (schema.additionalProperties === false) return false;
        if (typeof schema.additionalProperties === 'object' && !validates(schema.additionalProperties, value[key])) return false;
      }
    }
  }
  return true;
}

/** A value the schema refuses, with the field a rejection must name. */
export interface Violation {
  value: unknown;
  field: string;
}

/**
 * Values that violate one of `schema`'s constraints (range, length, count, a record's value) while
 * keeping its JSON type where it can: the in-type near misses a type check alone would not catch.
 */
export function violationsFor(schema: JsonSchema, hooks: Hooks, path: string): fc.Arbitrary<Violation>[] {
  const out: fc.Arbitrary<unknown>[] = [];
  const branches = schema.anyOf ?? schema.oneOf;
  const base = constraintOnly(schema);
  if (base !== undefined) return violationsFor(base, hooks, path);
  if (branches !== undefined) {
    return branches
      .flatMap((branch) => violationsFor(branch, hooks, path))
      .map((arbitrary) => arbitrary.filter((v) => !validates(schema, v.value)));
  }
  const type = types(schema) ?? [];
  if (type.includes('integer') || type.includes('number')) {
    const min = schema.minimum ?? schema.exclusiveMinimum;
    const max = schema.maximum ?? schema.exclusiveMaximum;
    const near = [-1, 0.5, 1.5, 1e9, -1e9, 1e300, -1e300, 2 ** 53, -(2 ** 53), Number.MAX_VALUE, Number.EPSILON];
    if (min !== undefined) near.push(min - 1, min - 0.5, min + 0.25);
    if (max !== undefined) near.push(max + 1, max + 0.5, max - 0.25, max * 10);
    out.push(fc.constantFrom(...near));
    if (min !== undefined) out.push(fc.integer({ min: Number.MIN_SAFE_INTEGER, max: min - 1 }));
    if (max !== undefined) out.push(fc.integer({ min: max + 1, max: Number.MAX_SAFE_INTEGER }));
    out.push(fc.double({ noNaN: true, noDefaultInfinity: true }));
  }
  if (type.includes('string')) {
    if (schema.maxLength !== undefined)
      out.push(fc.string({ minLength: schema.maxLength + 1, maxLength: schema.maxLength + 16 }));
    if (schema.minLength !== undefined && schema.minLength > 0) out.push(fc.string({ maxLength: schema.minLength - 1 }));
  }
  const field = (arbitrary: fc.Arbitrary<unknown>): fc.Arbitrary<Violation> =>
    arbitrary.filter((value) => !validates(schema, value)).map((value) => ({ value, field: path }));
  const result = out.map(field);
  const record = type.includes('object') ? recordParts(schema) : undefined;
  if (record !== undefined && Object.keys(schema.properties ?? {}).length === 0) {
    const keys = keyArbitrary(record.key, hooks, path);
    if (schema.maxProperties !== undefined) {
      const value = arbitraryFor(record.value, hooks, join(path, ITEM));
      result.push(
        field(
          fc
            .uniqueArray(fc.tuple(keys, value), {
              minLength: schema.maxProperties + 1,
              maxLength: schema.maxProperties + 5,
              selector: ([key]) => key.toLowerCase(),
            })
            .map((entries) => Object.fromEntries(entries)),
        ),
      );
    }
    const inner = violationsFor(record.value, hooks, join(path, KEY));
    if (inner.length > 0) {
      result.push(
        keys.chain((key) =>
          fc
            .oneof(...violationsFor(record.value, hooks, join(path, key)))
            .map((v) => ({ value: Object.fromEntries([[key, v.value]]), field: v.field })),
        ),
      );
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// The API's semantics on top of the schema: valid URLs, header names, and what they may not be.
// ---------------------------------------------------------------------------------------------

/**
 * A schema whose `anyOf` only adds constraints to itself (branches without a type, such as flow
 * control's "at least one of parallelism and rate": `anyOf: [{ required: [...] }, …]`): the
 * schema without them, whose values are then filtered by the whole schema.
 */
function constraintOnly(schema: JsonSchema): JsonSchema | undefined {
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches === undefined || types(schema) === undefined) return undefined;
  if (!branches.every((branch) => types(branch) === undefined && branch.properties === undefined)) return undefined;
  const { anyOf: _anyOf, oneOf: _oneOf, ...rest } = schema;
  return rest;
}
