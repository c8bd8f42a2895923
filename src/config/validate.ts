import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type { JSONValue } from '../contract.js';
import { ConfigError, type SourcePos } from '../util/errors.js';
import { didYouMean } from '../util/suggest.js';
import { childPointer, positionOf, type Pointer } from './yaml-source.js';

// verbose: an error carries the schema it broke, whose `properties` are the names a mistyped
// field is checked against ("Did you mean epochs?").
const ajv = new Ajv2020({ allErrors: true, strict: false, useDefaults: true, verbose: true });
const compiled = new WeakMap<object, ValidateFunction>();

export function compileSchema(schema: object): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  return fn;
}

/** The value at a JSON pointer of value (undefined when there is none). */
function valueAt(value: JSONValue, pointer: Pointer): JSONValue | undefined {
  let at: JSONValue | undefined = value;
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    at = at !== null && typeof at === 'object' ? (at as Record<string, JSONValue>)[key] : undefined;
  }
  return at;
}

/** Keywords whose message is clearer with the value that broke it: the value may come from an --set or a ${...} far from the field. */
const SAYS_VALUE = new Set(['type', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'enum', 'pattern', 'multipleOf']);

function describe(err: ErrorObject, value: JSONValue): { pointer: Pointer; field: string; problem: string } {
  let pointer = err.instancePath;
  let problem = err.message ?? 'is invalid';
  if (err.keyword === 'additionalProperties') {
    const extra = String((err.params as { additionalProperty: string }).additionalProperty);
    pointer = childPointer(pointer, extra);
    const known = err.parentSchema && typeof err.parentSchema === 'object' ? Object.keys((err.parentSchema as { properties?: object }).properties ?? {}) : [];
    problem = `unknown field${didYouMean(extra, known)}`;
  } else if (err.keyword === 'required') {
    problem = `missing required field "${(err.params as { missingProperty: string }).missingProperty}"`;
  } else if (err.keyword === 'enum') {
    problem = `must be one of ${JSON.stringify((err.params as { allowedValues: unknown[] }).allowedValues)}`;
  }
  const got = SAYS_VALUE.has(err.keyword) ? valueAt(value, err.instancePath) : undefined;
  if (got !== undefined) {
    const text = JSON.stringify(got);
    problem += `, got ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`;
  }
  const field = pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
  return { pointer, field: field || '(document)', problem };
}

/**
 * Validates a value and returns one located error per offending field. anyOf/oneOf umbrella
 * errors are dropped when a more specific error names the same place.
 */
export function validateAt(
  validate: ValidateFunction,
  value: JSONValue,
  base: Pointer,
  positions: Map<Pointer, SourcePos>,
  fieldPrefix = '',
): ConfigError[] {
  if (validate(value)) return [];
  const errors = validate.errors ?? [];
  const specific = errors.filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf');
  const chosen = new Map<string, ConfigError>();
  for (const err of specific.length > 0 ? specific : errors) {
    const { pointer, field, problem } = describe(err, value);
    const full = base + pointer;
    if (chosen.has(full)) continue;
    const name = fieldPrefix ? `${fieldPrefix}${field === '(document)' ? '' : '.' + field}` : field;
    chosen.set(full, new ConfigError(problem, positionOf(positions, full), name));
  }
  return [...chosen.values()];
}
