import { createHmac, timingSafeEqual } from 'node:crypto';
import type { JSONValue } from '../contract.js';
import { nodeKey } from '../keys.js';
import type { Manifest } from '../store/artifacts.js';
import { canonicalJSON } from '../util/hash.js';

export const CACHE_KEY_ENV = 'MEDPIPE_CACHE_KEY';
const FORMAT = 'medpipe-manifest/1';

/** What ac/<key> holds: the manifest, and with a team key an HMAC-SHA256 over its canonical JSON. */
interface Envelope {
  format: typeof FORMAT;
  manifest: Manifest;
  hmac?: string;
}

function hmac(teamKey: string, manifest: Manifest): string {
  return createHmac('sha256', teamKey).update(canonicalJSON(JSON.parse(JSON.stringify(manifest)) as JSONValue)).digest('hex');
}

export function sealManifest(manifest: Manifest, teamKey: string | undefined): Uint8Array {
  const envelope: Envelope = { format: FORMAT, manifest, ...(teamKey ? { hmac: hmac(teamKey, manifest) } : {}) };
  return Buffer.from(JSON.stringify(envelope));
}

/**
 * The manifest in a remote entry, or why it cannot be trusted. Its key must be the one asked
 * for and recompute from its key material (a mislabelled entry would hand one node another's
 * result); with a team key it must carry a valid HMAC (an attacker who can write to the cache
 * cannot forge results without the key).
 */
export function openManifest(bytes: Uint8Array, key: string, teamKey: string | undefined): { manifest: Manifest } | { problem: string; badSignature?: true } {
  let envelope: Partial<Envelope>;
  try {
    envelope = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<Envelope>;
  } catch {
    return { problem: 'not JSON' };
  }
  const m = envelope.manifest;
  if (envelope.format !== FORMAT || !m || typeof m !== 'object' || typeof m.outputs !== 'object' || !m.material) return { problem: `not a ${FORMAT} entry` };
  if (m.key !== key) return { problem: `entry is for key ${String(m.key).slice(0, 12)}` };
  try {
    if (nodeKey(m.material) !== key) return { problem: 'key material does not hash to its key' };
  } catch {
    return { problem: 'unreadable key material' };
  }
  if (teamKey) {
    if (typeof envelope.hmac !== 'string') return { problem: `unsigned (${CACHE_KEY_ENV} is set, so only signed entries are trusted)` };
    const want = Buffer.from(hmac(teamKey, m), 'hex');
    const got = Buffer.from(envelope.hmac, 'hex');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return { problem: 'bad signature (another team key, or a forged entry)', badSignature: true };
  }
  return { manifest: m };
}
