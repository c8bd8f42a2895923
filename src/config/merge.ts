import type { JSONObject, JSONValue } from '../contract.js';
import type { SourcePos } from '../util/errors.js';
import { childPointer, type Located, type Pointer } from './yaml-source.js';

function isObject(v: JSONValue | undefined): v is JSONObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Overlays `child` on `base`: mappings merge key by key, anything else (lists included) is
 * replaced whole, and a `null` removes the key. Positions follow whichever side a value came from.
 */
export function overlay(base: Located, child: Located): Located {
  const positions = new Map(base.positions);
  const dropUnder = (pointer: Pointer) => {
    for (const p of [...positions.keys()]) if (p.startsWith(pointer + '/')) positions.delete(p);
  };
  const merge = (b: JSONValue | undefined, c: JSONValue, pointer: Pointer): JSONValue | undefined => {
    const pos = child.positions.get(pointer);
    if (pos) positions.set(pointer, pos);
    if (isObject(b) && isObject(c)) {
      const out: JSONObject = { ...b };
      for (const [k, v] of Object.entries(c)) {
        const ptr = childPointer(pointer, k);
        const merged = merge(b[k], v, ptr);
        if (merged === undefined) {
          delete out[k];
          dropUnder(ptr);
          positions.delete(ptr);
        } else out[k] = merged;
      }
      return out;
    }
    if (c === null && pointer !== '') return undefined;
    dropUnder(pointer);
    for (const [p, v] of child.positions) if (p.startsWith(pointer + '/')) positions.set(p, v);
    return c;
  };
  return { value: merge(base.value, child.value, '') ?? null, positions };
}

/** Sets one value at a pointer, creating mappings on the way (used by --set). */
export function setAt(doc: Located, segments: string[], value: JSONValue, pos: SourcePos): Located {
  const put = (node: JSONValue, i: number): JSONValue => {
    if (i === segments.length) return value;
    const base = isObject(node) ? node : {};
    return { ...base, [segments[i]!]: put(base[segments[i]!] ?? null, i + 1) };
  };
  const positions = new Map(doc.positions);
  let ptr = '';
  for (const s of segments) {
    ptr = childPointer(ptr, s);
    positions.set(ptr, pos);
  }
  for (const p of [...positions.keys()]) if (p.startsWith(ptr + '/')) positions.delete(p);
  return { value: put(doc.value, 0), positions };
}
