import type { JSONObject, JSONValue } from '../contract.js';

/** What `${...}` can name: axis values of the instance, `vars.*`, `table`, `stage`, `pipeline`. */
export type Scope = Record<string, JSONValue>;

export class InterpolationError extends Error {
  /** Keys from the interpolated value's root down to the string that failed. */
  path: string[] = [];
}

const WHOLE = /^\$\{([^}]+)\}$/;
const PART = /\$\$\{|\$\{([^}]+)\}/g;
const PATH = /^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_0-9][A-Za-z0-9_-]*|\[[A-Za-z_][A-Za-z0-9_-]*\])*$/;

function lookup(expr: string, scope: Scope, depth: number): JSONValue {
  const trimmed = expr.trim();
  if (!PATH.test(trimmed)) throw new InterpolationError(`bad expression \${${expr}} (expected a name like vars.size or metric[dataset])`);
  const parts = trimmed.match(/[A-Za-z_0-9][A-Za-z0-9_-]*|\[[^\]]+\]/g)!;
  let current: JSONValue | undefined = scope;
  let path = '';
  for (const part of parts) {
    // `[axis]` indexes by the value of another name in scope, e.g. vars.metric[dataset].
    const key = part.startsWith('[') ? String(resolveValue(lookup(part.slice(1, -1), scope, depth), scope, depth)) : part;
    path = path ? `${path}.${key}` : key;
    if (typeof current !== 'object' || current === null || Array.isArray(current) || !(key in current)) {
      const known = typeof current === 'object' && current !== null && !Array.isArray(current) ? Object.keys(current).join(', ') : '';
      throw new InterpolationError(`\${${trimmed}}: "${path}" is not defined${known ? ` (known: ${known})` : ''}`);
    }
    current = (current as JSONObject)[key];
  }
  return resolveValue(current ?? null, scope, depth);
}

function resolveValue(value: JSONValue, scope: Scope, depth: number): JSONValue {
  if (depth > 20) throw new InterpolationError('interpolation nests too deep (a variable refers to itself?)');
  return interpolate(value, scope, depth + 1);
}

/** Substitutes `${name}` everywhere in a value; a string that is exactly `${name}` keeps the value's type. `$${` escapes. */
export function interpolate(value: JSONValue, scope: Scope, depth = 0): JSONValue {
  if (typeof value === 'string') {
    const whole = WHOLE.exec(value);
    if (whole) return lookup(whole[1]!, scope, depth);
    if (!value.includes('${')) return value;
    return value.replace(PART, (_match, expr: string | undefined) => {
      if (expr === undefined) return '${';
      const v = lookup(expr, scope, depth);
      return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
    });
  }
  const at = <T>(key: string | number, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof InterpolationError && depth === 0) err.path.unshift(String(key));
      throw err;
    }
  };
  if (Array.isArray(value)) return value.map((v, i) => at(i, () => interpolate(v, scope, depth)));
  if (value && typeof value === 'object') {
    const out: JSONObject = {};
    for (const [k, v] of Object.entries(value)) out[k] = at(k, () => interpolate(v, scope, depth));
    return out;
  }
  return value;
}
