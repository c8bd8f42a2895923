import type { JSONObject, JSONValue } from './contract.js';
import type { NodeInstance } from './config/expand.js';
import { canonicalJSON, digestJSON } from './util/hash.js';

/** What a node's key is computed over. Inputs enter by content digest, never by who made them. */
export interface KeyMaterial {
  kind: string;
  version: number;
  params: JSONObject;
  inputs: Record<string, string | { axes: JSONObject; digest: string }[]>;
  /** Digests of files outside the cache that the stage reads (raw data sets). */
  external?: JSONValue;
  /** Digest of the kind's code, for kinds keyed by their code (plugins; every kind under --rerun-triggers code). */
  code?: string;
}

/**
 * Parameters without those at their kind's unkeyedDefaults: writing such a default out is the
 * same as leaving it unset, for the key and for whoever compares parameters (`pipeline compare`).
 */
export function withoutUnkeyedDefaults(params: JSONObject, kind: { unkeyedDefaults?: JSONObject }): JSONObject {
  const defaults = kind.unkeyedDefaults;
  if (!defaults) return params;
  return Object.fromEntries(Object.entries(params).filter(([name, value]) => defaults[name] === undefined || canonicalJSON(defaults[name]) !== canonicalJSON(value)));
}

export function keyMaterial(
  node: NodeInstance,
  kind: { version: number; unkeyed?: string[]; unkeyedDefaults?: JSONObject },
  inputDigest: (upstreamNode: string, output: string) => string,
  external: JSONValue | undefined,
  code?: string,
): KeyMaterial {
  const inputs: KeyMaterial['inputs'] = {};
  for (const [name, input] of Object.entries(node.inputs)) {
    if (input.many) {
      inputs[name] = input.upstream.map((u) => ({ axes: u.axes as JSONObject, digest: inputDigest(u.node, u.output) }));
    } else {
      const u = input.upstream[0]!;
      inputs[name] = inputDigest(u.node, u.output);
    }
  }
  const params = Object.fromEntries(Object.entries(withoutUnkeyedDefaults(node.params, kind)).filter(([name]) => !kind.unkeyed?.includes(name)));
  const material: KeyMaterial = { kind: node.kind, version: kind.version, params, inputs };
  if (external !== undefined) material.external = external;
  if (code !== undefined) material.code = code;
  return material;
}

export function nodeKey(material: KeyMaterial): string {
  return digestJSON(material as unknown as JSONValue);
}

/** Leaf values of a JSON value by dotted path (arrays are leaves), each as canonical JSON text. */
export function flattenLeaves(value: JSONValue | undefined, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flattenLeaves(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (value !== undefined) out.set(prefix, canonicalJSON(value));
  return out;
}

/**
 * What changed in a raw-data fingerprint, from its readable leaves (counts, names): its digests
 * say only that contents changed, so then it says that.
 */
function externalDetail(before: JSONValue | undefined, after: JSONValue | undefined): string {
  const a = flattenLeaves(before);
  const b = flattenLeaves(after);
  const digest = (v: string | undefined) => v !== undefined && /^"[0-9a-f]{64}"$/.test(v);
  const readable: string[] = [];
  let contents = false;
  for (const k of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (a.get(k) === b.get(k)) continue;
    if (digest(a.get(k)) || digest(b.get(k))) contents = true;
    else readable.push(`${k}: ${a.get(k) ?? '(unset)'} -> ${b.get(k) ?? '(unset)'}`);
  }
  if (readable.length > 0) return ` (${readable.join('; ')})`;
  if (!contents) return '';
  const files = a.get('files');
  return files !== undefined && files === b.get('files') ? ` (the same ${files} files; contents changed)` : ' (contents changed)';
}

/** Why a node's key differs from the one it had last time, in words a user can act on. */
export function explainChange(previous: KeyMaterial, current: KeyMaterial): string[] {
  const reasons: string[] = [];
  if (previous.kind !== current.kind) reasons.push(`stage kind changed (${previous.kind} -> ${current.kind})`);
  else if (previous.version !== current.version) reasons.push(`kind version bumped (${previous.version} -> ${current.version})`);
  const before = flattenLeaves(previous.params);
  const after = flattenLeaves(current.params);
  const changed: string[] = [];
  for (const k of new Set([...before.keys(), ...after.keys()])) {
    if (before.get(k) !== after.get(k)) changed.push(`${k}: ${before.get(k) ?? '(unset)'} -> ${after.get(k) ?? '(unset)'}`);
  }
  if (changed.length > 0) reasons.push(`params changed (${changed.sort().join('; ')})`);
  for (const name of new Set([...Object.keys(previous.inputs), ...Object.keys(current.inputs)])) {
    if (canonicalJSON(previous.inputs[name] ?? null) !== canonicalJSON(current.inputs[name] ?? null)) reasons.push(`input ${name} changed`);
  }
  if (canonicalJSON(previous.external ?? null) !== canonicalJSON(current.external ?? null)) reasons.push(`external files changed${externalDetail(previous.external, current.external)}`);
  if (previous.code !== undefined && current.code !== undefined && previous.code !== current.code) reasons.push(`code of kind ${current.kind} changed`);
  else if ((previous.code === undefined) !== (current.code === undefined)) reasons.push(current.code === undefined ? 'no longer keyed by code' : 'now keyed by code (--rerun-triggers code)');
  if (reasons.length === 0) reasons.push('result missing from the cache');
  return reasons;
}
