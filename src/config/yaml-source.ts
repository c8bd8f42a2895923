import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import type { JSONValue } from '../contract.js';
import { ConfigError, type SourcePos } from '../util/errors.js';

/** JSON pointer (RFC 6901) of a value inside a document: '/stages/finetune/with/epochs'. */
export type Pointer = string;

export interface Located {
  value: JSONValue;
  /** Position of every key and value, by pointer; a key's position wins for its pointer. */
  positions: Map<Pointer, SourcePos>;
}

export function childPointer(parent: Pointer, key: string | number): Pointer {
  return `${parent}/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

export function pointerSegments(pointer: Pointer): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Nearest recorded position at or above a pointer, so any problem can be pinned to a line. */
export function positionOf(positions: Map<Pointer, SourcePos>, pointer: Pointer): SourcePos | undefined {
  let p = pointer;
  for (;;) {
    const pos = positions.get(p);
    if (pos) return pos;
    if (p === '') return undefined;
    p = p.slice(0, p.lastIndexOf('/'));
  }
}

/** JSON has no infinity or NaN, and a key or a bound over them is meaningless: refused at load. */
export function nonFiniteProblem(written: string): string {
  return `${written} is not a finite number (.inf, .nan and numbers beyond a double, such as 1e400, are refused; quote it to mean a string)`;
}

/** Dotted path of the first non-finite number inside a value, '' for the value itself. */
export function findNonFinite(value: unknown, path = ''): { path: string; value: number } | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : { path, value };
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const found = findNonFinite(v, path ? `${path}.${k}` : k);
      if (found) return found;
    }
  }
  return undefined;
}

/** Parses YAML text, failing with file:line:col on syntax errors and duplicate keys. */
export function parseYaml(text: string, file: string): Located {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const at = (offset: number): SourcePos => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, col };
  };
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const problem = err.code === 'DUPLICATE_KEY' ? `duplicate name: ${err.message.replace(/\s+at line.*$/s, '')}` : err.message.split('\n')[0]!;
    throw new ConfigError(problem, at(err.pos[0]));
  }
  const positions = new Map<Pointer, SourcePos>();
  const walk = (node: unknown, pointer: Pointer): JSONValue => {
    if (node === null || node === undefined) return null;
    const n = node as Node;
    if (n.range && !positions.has(pointer)) positions.set(pointer, at(n.range[0]));
    if (isMap(n)) {
      const out: { [k: string]: JSONValue } = {};
      for (const item of n.items) {
        if (!isPair(item)) continue;
        const keyNode = item.key;
        const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
        const ptr = childPointer(pointer, key);
        if (isScalar(keyNode) && keyNode.range) positions.set(ptr, at(keyNode.range[0]));
        out[key] = walk(item.value, ptr);
      }
      return out;
    }
    if (isSeq(n)) return n.items.map((item, i) => walk(item, childPointer(pointer, i)));
    if (isScalar(n)) {
      const v = n.value;
      if (typeof v === 'number' && !Number.isFinite(v)) throw new ConfigError(nonFiniteProblem(n.source ?? String(v)), n.range ? at(n.range[0]) : undefined, pointerSegments(pointer).join('.'));
      if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
      if (v instanceof Date) return v.toISOString();
      return String(v);
    }
    throw new ConfigError('unsupported YAML node (aliases and tags are not part of the pipeline format)', n.range ? at(n.range[0]) : undefined);
  };
  const value = walk(doc.contents, '');
  return { value, positions };
}
