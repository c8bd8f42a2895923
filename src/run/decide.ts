// Planning: what a node's key is, whether the store already holds its result, and why it
// would run. No locks, no processes: the scheduler, the batch driver and a batch job's compute
// node all decide the same way.
import { stat } from 'node:fs/promises';
import type { JSONValue } from '../contract.js';
import type { NodeInstance } from '../config/expand.js';
import { explainChange, keyMaterial, nodeKey, type KeyMaterial } from '../keys.js';
import { kindCode, keyedByCode } from '../code/kind-code.js';
import type { CodeDigest } from '../code/digest.js';
import type { Manifest } from '../store/artifacts.js';
import type { Store } from '../store/store.js';
import { fingerprintContext } from './context.js';
import type { Reason } from './reason.js';
import type { KeyContext, NodeOutcome } from './types.js';

/** A manifest is a hit only while everything it points at is still in the store. */
export async function artifactsPresent(store: Store, manifest: Manifest): Promise<boolean> {
  for (const a of Object.values(manifest.outputs)) {
    if (a.type === 'file' || a.type === 'dir') {
      try {
        const st = await stat(store.blobs.pathOf(a.digest));
        if (st.size !== a.size) return false;
      } catch {
        return false;
      }
    } else if (a.type === 'records' && !store.records.hasSet(a.set)) return false;
  }
  return true;
}

/** The store's result for a key; one whose artifacts went missing is dropped so the node reruns. */
export async function localHit(store: Store, key: string): Promise<Manifest | undefined> {
  const m = store.manifest(key);
  if (!m) return undefined;
  if (await artifactsPresent(store, m)) return m;
  // A read-only cache keeps it: a miss there either way.
  if (!store.readOnly) await store.invalidate(key);
  return undefined;
}

export interface Resolved {
  material: KeyMaterial;
  key: string;
  /** The digest of the kind's code now, keyed or not: recorded in the result's provenance. */
  code: CodeDigest;
}

/** Key of a node whose inputs are all known (parents finished or cached). */
export async function resolveKey(kc: KeyContext, node: NodeInstance, parentManifest: (id: string) => Manifest): Promise<Resolved> {
  const entry = kc.registry.get(node.kind)!;
  const kind = entry.kind;
  const code = await kindCode(entry);
  let external: JSONValue | undefined;
  const fctx = fingerprintContext(kc.store, kc.pipeline.spec.baseDir);
  if (kind.check) {
    const problems = await kind.check(node.params, fctx);
    if (problems.length > 0) throw new Error(`inputs not ready:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  if (kind.fingerprint) external = await kind.fingerprint(node.params, fctx);
  const material = keyMaterial(
    node,
    kind,
    (up, output) => {
      const artifact = parentManifest(up).outputs[output];
      if (!artifact) throw new Error(`${up} has no output "${output}" in its cached result (kind changed without a version bump?)`);
      return artifact.digest;
    },
    external,
    keyedByCode(entry, kc.codeTrigger ?? 'plugins') ? code.digest : undefined,
  );
  return { material, key: nodeKey(material), code };
}

/** Why a node with this key material is not a hit: compared with the last key it had. */
export function whyRun(store: Store, pipeline: string, node: string, material: KeyMaterial): Reason {
  const last = store.lastKnown(pipeline, node);
  // An interrupted run of this very key left checkpoints: the node continues from them, which
  // "never run" alone does not say.
  const resumes = store.hasCheckpoints(nodeKey(material)) ? { resumes: true as const } : {};
  if (!last) return { why: 'never-run', ...resumes };
  return { why: 'changed', changes: explainChange(last.material, material), ...resumes };
}

/**
 * A hit whose kind is keyed by version while its code changed since the result was made: still
 * a hit (that is the policy for built-in kinds), but `status` says so.
 */
export function codeDrift(manifest: Manifest, resolved: Resolved, kind: string): Reason | undefined {
  const then = manifest.provenance.code?.digest;
  if (!then || then === resolved.code.digest || resolved.material.code !== undefined) return undefined;
  return { why: 'code-changed-unkeyed', kind };
}

const STOPPED = new Set<NodeOutcome['state']>(['failed', 'skipped', 'interrupted', 'not-started']);

/**
 * What the parents' outcomes mean for a node: stopped (an upstream did not finish), pending
 * (an upstream will run, so the key is unknown), or ready with every parent's manifest.
 */
export function gate(parents: string[], outcomes: NodeOutcome[]): { ready: false; outcome: NodeOutcome } | { ready: true; manifests: Map<string, Manifest> } {
  const blocked = parents.find((_, i) => STOPPED.has(outcomes[i]!.state));
  if (blocked) return { ready: false, outcome: { state: 'skipped', reason: { why: 'upstream-stopped', upstream: blocked } } };
  const pending = parents.find((_, i) => outcomes[i]!.state === 'would-run');
  if (pending) return { ready: false, outcome: { state: 'would-run', reason: { why: 'upstream-will-run', upstream: pending } } };
  return { ready: true, manifests: new Map(parents.map((p, i) => [p, outcomes[i]!.manifest!])) };
}
