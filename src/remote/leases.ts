import { hostname } from 'node:os';
import { processAlive } from '../util/process.js';
import type { ObjectBackend, Stored } from './backend.js';

export interface Lease {
  owner: string;
  host: string;
  pid: number;
  /** Wall-clock ms; runners sharing a remote need clocks within a fraction of the TTL (NTP). */
  expires: number;
}

/** How long a writer on a non-exclusive backend waits before reading its lease back. */
export const SETTLE_MS = Number(process.env['MEDPIPE_LEASE_SETTLE_MS'] ?? 150);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function parse(stored: Stored | undefined): Lease | undefined {
  if (!stored) return undefined;
  try {
    const v = JSON.parse(stored.bytes.toString('utf8')) as Partial<Lease>;
    if (typeof v.owner === 'string' && typeof v.expires === 'number') return { owner: v.owner, host: String(v.host ?? '?'), pid: Number(v.pid ?? 0), expires: v.expires };
  } catch {
    // A torn or foreign object: treat it as an expired lease so it can be taken over.
  }
  return { owner: '', host: '?', pid: 0, expires: 0 };
}

/** Not expired, and not held by a process of this host that is gone (a crash need not wait out the TTL). */
export function live(lease: Lease): boolean {
  return lease.expires > Date.now() && !(lease.host === hostname() && lease.pid > 0 && !processAlive(lease.pid));
}

/**
 * Leases as objects `leases/<key>` = {owner, host, pid, expires}.
 * Guarantees: on exclusive backends (file://, S3 with conditional PUT) at most one live holder.
 * On plain HTTP/WebDAV it is best effort: the writer reads its lease back after SETTLE_MS and
 * only then believes it; two runners can both win only if one's GET→PUT takes longer than that.
 * Either way a lost race costs a duplicate computation, never a wrong result (write-once entries).
 */
export class Leases {
  constructor(private readonly backend: ObjectBackend) {}

  private path(key: string): string {
    return `leases/${key}`;
  }

  private record(owner: string, ttlMs: number): Uint8Array {
    const lease: Lease = { owner, host: hostname(), pid: process.pid, expires: Date.now() + ttlMs };
    return Buffer.from(JSON.stringify(lease));
  }

  async holder(key: string): Promise<Lease | undefined> {
    return parse(await this.backend.read(this.path(key)));
  }

  async tryAcquire(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const path = this.path(key);
    const stored = await this.backend.read(path);
    const current = parse(stored);
    let written: boolean;
    if (!stored || !current) written = await this.backend.create(path, { bytes: this.record(owner, ttlMs) });
    else if (current.owner === owner || !live(current)) written = await this.backend.replace(path, this.record(owner, ttlMs), stored);
    else return false;
    if (!written) return false;
    if (!this.backend.exclusive) await sleep(SETTLE_MS);
    return (await this.holder(key))?.owner === owner;
  }

  async renew(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const path = this.path(key);
    const stored = await this.backend.read(path);
    if (!stored || parse(stored)?.owner !== owner) return false;
    return this.backend.replace(path, this.record(owner, ttlMs), stored);
  }

  async release(key: string, owner: string): Promise<void> {
    const path = this.path(key);
    const stored = await this.backend.read(path);
    if (!stored || parse(stored)?.owner !== owner) return;
    if (await this.backend.remove(path)) return;
    // No DELETE on this server: an expired record frees the key just the same.
    await this.backend.replace(path, Buffer.from(JSON.stringify({ owner: '', host: '', pid: 0, expires: 0 })), stored);
  }
}
