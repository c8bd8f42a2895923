import { createHmac, timingSafeEqual } from 'node:crypto';
import { hostname } from 'node:os';
import { processAlive } from '../util/process.js';
import type { ObjectBackend, Stored } from './backend.js';
import { CACHE_KEY_ENV } from './sign.js';

export interface Lease {
  owner: string;
  host: string;
  pid: number;
  /** Wall-clock ms when the holder took it (renewals keep it), so a waiter can tell its age. */
  acquired: number;
  /** Wall-clock ms; runners sharing a remote need clocks within a fraction of the TTL (NTP). */
  expires: number;
  /** How long the holder expects the node to take (its last run of it), when it knows. */
  expectedMs?: number;
  /** Why this lease does not count, although an object is there (unsigned, forged, implausible). */
  problem?: string;
}

/** How every runner on one remote writes and judges leases (the same TTL and team key on all). */
export interface LeasePolicy {
  ttlMs: number;
  teamKey?: string;
}

export interface AcquireOptions {
  /** Stated in the lease, so waiters without a record of the node can judge its age. */
  expectedMs?: number;
  /** Take the lease from this owner even though it is live: a waiter judged it stuck. */
  staleOwner?: string;
  /** Told about a lease taken over because it did not count (its `problem`). */
  onIgnored?: (lease: Lease) => void;
}

/** How long a writer on a non-exclusive backend waits before reading its lease back. */
export const SETTLE_MS = Number(process.env['MEDPIPE_LEASE_SETTLE_MS'] ?? 150);
/** Clock difference between runners tolerated when judging a lease's expiry. */
const CLOCK_SKEW_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function mac(teamKey: string, key: string, l: Lease): string {
  const fields = ['medpipe-lease/1', key, l.owner, l.host, String(l.pid), String(l.acquired), String(l.expires), String(l.expectedMs ?? '')];
  return createHmac('sha256', teamKey).update(fields.join('\n')).digest('hex');
}

function encode(key: string, lease: Lease, policy: LeasePolicy): Uint8Array {
  const { problem: _, ...fields } = lease;
  return Buffer.from(JSON.stringify({ ...fields, ...(policy.teamKey ? { hmac: mac(policy.teamKey, key, lease) } : {}) }));
}

const FREE: Lease = { owner: '', host: '?', pid: 0, acquired: 0, expires: 0 };

/**
 * The lease in `stored`, with `problem` set when it must not hold anyone up: with a team key an
 * unsigned or wrongly signed one (anyone who can write to the remote could otherwise stall every
 * runner), and always one whose expiry lies further ahead than any renewal puts it.
 */
function parse(stored: Stored | undefined, key: string, policy: LeasePolicy): Lease | undefined {
  if (!stored) return undefined;
  let v: Partial<Lease> & { hmac?: unknown };
  try {
    v = JSON.parse(stored.bytes.toString('utf8')) as Partial<Lease> & { hmac?: unknown };
  } catch {
    // A torn or foreign object: treat it as an expired lease so it can be taken over.
    return { ...FREE };
  }
  if (typeof v !== 'object' || v === null || typeof v.owner !== 'string' || typeof v.expires !== 'number') return { ...FREE };
  const lease: Lease = {
    owner: v.owner,
    host: String(v.host ?? '?'),
    pid: Number(v.pid ?? 0),
    acquired: typeof v.acquired === 'number' ? v.acquired : 0,
    expires: v.expires,
    ...(typeof v.expectedMs === 'number' && Number.isFinite(v.expectedMs) ? { expectedMs: v.expectedMs } : {}),
  };
  if (policy.teamKey) {
    if (typeof v.hmac !== 'string') return { ...lease, problem: `unsigned (${CACHE_KEY_ENV} is set, so only signed leases count)` };
    const want = Buffer.from(mac(policy.teamKey, key, lease), 'hex');
    const got = Buffer.from(v.hmac, 'hex');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return { ...lease, problem: 'bad signature (another team key, or a forged lease)' };
  }
  const horizon = Date.now() + 2 * policy.ttlMs + CLOCK_SKEW_MS;
  if (lease.expires > horizon) return { ...lease, problem: `expires ${new Date(lease.expires).toISOString()}, further ahead than a renewal (TTL ${Math.round(policy.ttlMs / 1000)} s) ever puts it` };
  return lease;
}

/** Counts, is not expired, and is not held by a process of this host that is gone (a crash need not wait out the TTL). */
export function live(lease: Lease): boolean {
  return !lease.problem && lease.expires > Date.now() && !(lease.host === hostname() && lease.pid > 0 && !processAlive(lease.pid));
}

/** "host pid N", as messages name a holder. */
export function describeHolder(lease: Lease): string {
  return `${lease.host} pid ${lease.pid}`;
}

/**
 * Leases as objects `leases/<key>` = {owner, host, pid, acquired, expires, expectedMs?, hmac?}.
 * Guarantees: on exclusive backends (file://, S3 with conditional PUT) at most one live holder.
 * On plain HTTP/WebDAV it is best effort: the writer reads its lease back after SETTLE_MS and
 * only then believes it; two runners can both win only if one's GET→PUT takes longer than that.
 * Either way a lost race costs a duplicate computation, never a wrong result (write-once entries,
 * and a runner whose push finds another result adopts it).
 */
export class Leases {
  constructor(private readonly backend: ObjectBackend) {}

  private path(key: string): string {
    return `leases/${key}`;
  }

  private record(key: string, owner: string, policy: LeasePolicy, acquired: number, expectedMs: number | undefined): Uint8Array {
    const lease: Lease = { owner, host: hostname(), pid: process.pid, acquired, expires: Date.now() + policy.ttlMs, ...(expectedMs !== undefined ? { expectedMs } : {}) };
    return encode(key, lease, policy);
  }

  async holder(key: string, policy: LeasePolicy): Promise<Lease | undefined> {
    return parse(await this.backend.read(this.path(key)), key, policy);
  }

  /**
   * Takes the lease when it is free, expired, ours, or does not count; with `staleOwner`, also
   * when that owner still holds it (a waiter decided it has held it far too long).
   */
  async tryAcquire(key: string, owner: string, policy: LeasePolicy, options: AcquireOptions = {}): Promise<boolean> {
    const path = this.path(key);
    const stored = await this.backend.read(path);
    const current = parse(stored, key, policy);
    const record = this.record(key, owner, policy, Date.now(), options.expectedMs);
    let written: boolean;
    if (!stored || !current) written = await this.backend.create(path, { bytes: record });
    else if ((current.owner === owner && !current.problem) || !live(current) || (options.staleOwner !== undefined && current.owner === options.staleOwner)) written = await this.backend.replace(path, record, stored);
    else return false;
    if (!written) return false;
    if (current?.problem && current.owner !== '' && current.owner !== owner) options.onIgnored?.(current);
    if (!this.backend.exclusive) await sleep(SETTLE_MS);
    const now = await this.holder(key, policy);
    return now?.owner === owner && !now.problem;
  }

  async renew(key: string, owner: string, policy: LeasePolicy): Promise<boolean> {
    const path = this.path(key);
    const stored = await this.backend.read(path);
    const current = parse(stored, key, policy);
    if (!stored || current?.owner !== owner || current.problem) return false;
    return this.backend.replace(path, this.record(key, owner, policy, current.acquired || Date.now(), current.expectedMs), stored);
  }

  async release(key: string, owner: string, policy: LeasePolicy): Promise<void> {
    const path = this.path(key);
    const stored = await this.backend.read(path);
    if (!stored || parse(stored, key, policy)?.owner !== owner) return;
    if (await this.backend.remove(path)) return;
    // No DELETE on this server: an expired record frees the key just the same.
    await this.backend.replace(path, Buffer.from(JSON.stringify({ owner: '', host: '', pid: 0, acquired: 0, expires: 0 })), stored);
  }
}
