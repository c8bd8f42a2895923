import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Artifact, Manifest } from '../store/artifacts.js';
import type { Store } from '../store/store.js';
import { digestJSON, sha256File } from '../util/hash.js';
import { packRecordSet, unpackRecordSet } from './pack.js';
import type { Lease, RemoteStore } from './remote-store.js';
import { openManifest, sealManifest } from './sign.js';

export interface RemoteCacheOptions {
  /** Team key: sign what is pushed, trust only what is signed with it. */
  teamKey?: string;
  warn(message: string): void;
  leaseTtlMs?: number;
}

export type LeaseOutcome = 'acquired' | 'held' | 'unavailable';

/** A remote entry that must not be used; the node is treated as a miss. */
class Untrusted extends Error {}

const short = (s: string) => s.slice(0, 12);

/**
 * The local store's view of a remote: pull-through with verification, push, leases. Remote
 * trouble (down, slow, corrupt) never fails a run: it is a warning and a miss, so the node is
 * computed here as if there were no remote.
 */
export class RemoteCache {
  readonly leaseTtlMs: number;
  private readonly warned = new Set<string>();

  constructor(
    readonly remote: RemoteStore,
    private readonly store: Store,
    private readonly options: RemoteCacheOptions,
  ) {
    this.leaseTtlMs = options.leaseTtlMs ?? Number(process.env['MEDPIPE_REMOTE_LEASE_TTL_MS'] ?? 60_000);
  }

  get url(): string {
    return this.remote.url;
  }

  /** What a node's worker needs to open this remote itself (for its checkpoints). */
  get spec(): string {
    return this.remote.spec;
  }

  private warn(message: string): void {
    // A dead remote would otherwise say so once per node.
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.options.warn(message);
  }

  private unavailable(err: unknown): undefined {
    this.warn(`remote cache unavailable, computing locally: ${(err as Error).message}`);
    return undefined;
  }

  /** The verified manifest alone (a dry run's "is it on the remote?"). */
  async peek(key: string): Promise<Manifest | undefined> {
    try {
      return await this.fetchManifest(key);
    } catch (err) {
      return err instanceof Untrusted ? undefined : this.unavailable(err);
    }
  }

  /** Manifest and every artifact it names, each verified against its digest, committed locally. */
  async pull(key: string): Promise<Manifest | undefined> {
    try {
      const manifest = await this.fetchManifest(key);
      if (!manifest) return undefined;
      const outputs: Record<string, Artifact> = {};
      for (const [name, artifact] of Object.entries(manifest.outputs)) outputs[name] = await this.fetchArtifact(manifest, name, artifact);
      return await this.store.commit({ ...manifest, outputs });
    } catch (err) {
      return err instanceof Untrusted ? undefined : this.unavailable(err);
    }
  }

  private async fetchManifest(key: string): Promise<Manifest | undefined> {
    const bytes = await this.remote.getManifest(key);
    if (!bytes) return undefined;
    const opened = openManifest(bytes, key, this.options.teamKey);
    if ('problem' in opened) {
      this.warn(`ignoring remote entry ${short(key)}: ${opened.problem}`);
      throw new Untrusted();
    }
    return opened.manifest;
  }

  private corrupt(manifest: Manifest, name: string, expected: string, actual: string): Untrusted {
    this.warn(`remote entry for ${manifest.node} (${short(manifest.key)}): output ${name} has digest ${short(actual)}…, expected ${short(expected)}… — ignored, the node is recomputed`);
    return new Untrusted();
  }

  private async fetchArtifact(manifest: Manifest, name: string, a: Artifact): Promise<Artifact> {
    if (a.type === 'json') {
      const actual = digestJSON(a.value);
      if (actual !== a.digest) throw this.corrupt(manifest, name, a.digest, actual);
      return a;
    }
    if (a.type === 'file' || a.type === 'dir') {
      if (await this.store.blobs.has(a.digest)) return a;
      await this.download(manifest, name, a.digest, async (tmp) => {
        await this.store.blobs.put(tmp, { move: true });
      });
      return a;
    }
    if (a.type === 'records') {
      const local = this.store.records.findByDigest(a.digest);
      if (local) return { ...a, set: local };
      let set = '';
      await this.download(manifest, name, a.digest, async (tmp) => {
        set = (await this.store.records.importRaw(unpackRecordSet(tmp, a.count, a.meta), a.meta, a.digest)).set;
      });
      return { ...a, set };
    }
    throw this.corrupt(manifest, name, 'a known artifact type', String((a as { type: unknown }).type));
  }

  /** Downloads cas/<digest> to a temp file, checks it hashes to its name, hands it to `keep`. */
  private async download(manifest: Manifest, name: string, digest: string, keep: (tmp: string) => Promise<void>): Promise<void> {
    await mkdir(this.store.tmpDir, { recursive: true });
    const tmp = join(this.store.tmpDir, `pull-${randomUUID()}`);
    try {
      if (!(await this.remote.getBlob(digest, tmp))) {
        this.warn(`remote entry for ${manifest.node} (${short(manifest.key)}) lacks blob ${short(digest)} of output ${name}; recomputing`);
        throw new Untrusted();
      }
      const actual = (await sha256File(tmp)).digest;
      if (actual !== digest) {
        // Bytes that do not hash to their name are never right: drop them so a push can repair.
        await this.remote.dropBlob(digest).catch(() => undefined);
        throw this.corrupt(manifest, name, digest, actual);
      }
      await keep(tmp);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Uploads a finished node: blobs first, the manifest last, so a reader never finds a manifest
   * whose blobs are missing. Blobs are re-checked even when the manifest is already there, which
   * repairs one a reader dropped as corrupt.
   */
  async push(manifest: Manifest): Promise<'pushed' | 'present' | 'failed'> {
    try {
      for (const [name, a] of Object.entries(manifest.outputs)) {
        if (a.type === 'json' || (await this.remote.hasBlob(a.digest))) continue;
        if (a.type === 'file' || a.type === 'dir') {
          const path = await this.store.blobs.verified(a.digest, `${manifest.node} output ${name}`);
          await this.remote.putBlob(a.digest, path, a.size);
          continue;
        }
        await mkdir(this.store.tmpDir, { recursive: true });
        const tmp = join(this.store.tmpDir, `push-${randomUUID()}`);
        try {
          const packed = await packRecordSet(this.store.records, a.set, a.meta, tmp);
          if (packed.digest !== a.digest) throw new Error(`${manifest.node} output ${name}: local record set hashes to ${short(packed.digest)}…, expected ${short(a.digest)}… (run \`pipeline cache verify\`)`);
          await this.remote.putBlob(a.digest, tmp, packed.size);
        } finally {
          await rm(tmp, { force: true });
        }
      }
      return (await this.remote.putManifest(manifest.key, sealManifest(manifest, this.options.teamKey))) ? 'pushed' : 'present';
    } catch (err) {
      this.warn(`could not push ${manifest.node} (${short(manifest.key)}) to ${this.url}: ${(err as Error).message}`);
      return 'failed';
    }
  }

  async lease(key: string, owner: string): Promise<LeaseOutcome> {
    try {
      return (await this.remote.tryAcquire(key, owner, this.leaseTtlMs)) ? 'acquired' : 'held';
    } catch (err) {
      this.unavailable(err);
      return 'unavailable';
    }
  }

  async holder(key: string): Promise<Lease | undefined> {
    return this.remote.holder(key).catch(() => undefined);
  }

  async renew(key: string, owner: string): Promise<void> {
    await this.remote.renew(key, owner, this.leaseTtlMs).catch((err: unknown) => this.unavailable(err));
  }

  async release(key: string, owner: string): Promise<void> {
    await this.remote.release(key, owner).catch((err: unknown) => this.unavailable(err));
  }

  close(): Promise<void> {
    return this.remote.close();
  }
}
