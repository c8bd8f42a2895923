import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Artifact, Manifest } from '../store/artifacts.js';
import { isDigest } from '../store/names.js';
import type { Store } from '../store/store.js';
import { fsProblem } from '../util/errors.js';
import { digestJSON, sha256File } from '../util/hash.js';
import type { Stored } from './backend.js';
import { packRecordSet, unpackRecordSet } from './pack.js';
import { describeHolder } from './leases.js';
import type { AcquireOptions, Lease, LeasePolicy, RemoteStore } from './remote-store.js';
import { CACHE_KEY_ENV, openManifest, sealManifest } from './sign.js';
import { unsignedWarning } from './trust.js';

export interface RemoteCacheOptions {
  /** Team key: sign what is pushed, trust only what is signed with it. */
  teamKey?: string;
  warn(message: string): void;
  leaseTtlMs?: number;
  /** The longest a runner waits on another's lease, whatever the lease says. */
  maxWaitMs?: number;
  /** How far past the node's expected duration a lease may go before it is taken as stale. */
  waitMarginMs?: number;
  /** What the caller does when the remote cannot be reached, said in its warning (default: computing locally). */
  whenUnavailable?: string;
}

export type LeaseOutcome = 'acquired' | 'held' | 'unavailable';

/**
 * pushed: the entry is new; present: the same result was there; repaired: a broken entry (or
 * blob) was replaced by this one; adopted: another result was there first and now is the local
 * one too; orphaned: not pushed, built on a local result this process replaced by the remote's
 * (nobody asks for its key any more); failed: the remote could not be written (a warning says why).
 */
export type PushOutcome = 'pushed' | 'present' | 'repaired' | 'adopted' | 'orphaned' | 'failed';

/** What ac/<key> holds as seen by a pusher whose own entry could not be created. */
type Broken = { broken: string; stored: Stored | undefined; badSignature?: true };
type Found = Broken | { good: Manifest; stored: Stored; repairedBlobs: boolean };

const HOUR_MS = 3_600_000;

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
  readonly maxWaitMs: number;
  readonly waitMarginMs: number;
  private readonly warned = new Set<string>();
  private announced = false;
  /** Remote calls that failed for want of the remote (not a missing or untrusted entry). */
  unreachable = 0;
  /** Blobs whose remote bytes were proven not to hash to their name (kept by servers without DELETE). */
  private readonly corruptBlobs = new Set<string>();
  /** Digests of local results that adopt() replaced by the remote's. */
  private readonly superseded = new Set<string>();

  constructor(
    readonly remote: RemoteStore,
    private readonly store: Store,
    private readonly options: RemoteCacheOptions,
  ) {
    const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
    this.leaseTtlMs = options.leaseTtlMs ?? env('MEDPIPE_REMOTE_LEASE_TTL_MS', 60_000);
    this.maxWaitMs = options.maxWaitMs ?? env('MEDPIPE_REMOTE_MAX_WAIT_MS', 24 * HOUR_MS);
    this.waitMarginMs = options.waitMarginMs ?? env('MEDPIPE_REMOTE_WAIT_MARGIN_MS', HOUR_MS / 6);
  }

  get signed(): boolean {
    return Boolean(this.options.teamKey);
  }

  private get policy(): LeasePolicy {
    return { ttlMs: this.leaseTtlMs, ...(this.options.teamKey ? { teamKey: this.options.teamKey } : {}) };
  }

  /** Once per run, when the remote is first used: what an unsigned remote lets anyone do. */
  private announce(): void {
    if (this.announced) return;
    this.announced = true;
    if (!this.options.teamKey) this.options.warn(unsignedWarning(this.url));
  }

  get url(): string {
    return this.remote.url;
  }

  /** What a node's worker needs to open this remote itself (for its checkpoints). */
  get spec(): string {
    return this.remote.spec;
  }

  warn(message: string): void {
    // A dead remote would otherwise say so once per node.
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.options.warn(message);
  }

  private unavailable(err: unknown): undefined {
    this.unreachable++;
    this.warn(`remote cache unavailable, ${this.options.whenUnavailable ?? 'computing locally'}: ${(err as Error).message}`);
    return undefined;
  }

  /** The verified manifest alone (a dry run's "is it on the remote?"). */
  async peek(key: string): Promise<Manifest | undefined> {
    this.announce();
    try {
      return await this.fetchManifest(key);
    } catch (err) {
      return err instanceof Untrusted ? undefined : this.unavailable(err);
    }
  }

  /** Manifest and every artifact it names, each verified against its digest, committed locally. */
  async pull(key: string): Promise<Manifest | undefined> {
    this.announce();
    try {
      const manifest = await this.fetchManifest(key);
      if (!manifest) return undefined;
      return await this.store.commit(await this.fetchOutputs(manifest));
    } catch (err) {
      return err instanceof Untrusted ? undefined : this.unavailable(err);
    }
  }

  /** The manifest with every artifact fetched, verified and in the local store (not yet committed). */
  private async fetchOutputs(manifest: Manifest): Promise<Manifest> {
    const outputs: Record<string, Artifact> = {};
    for (const [name, artifact] of Object.entries(manifest.outputs)) outputs[name] = await this.fetchArtifact(manifest, name, artifact);
    return { ...manifest, outputs };
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
    // Before the digest touches a local path (blobs.has): a hostile `../../file` would be looked up, then deleted by verify.
    if (!isDigest(a.digest)) {
      this.warn(`remote entry for ${manifest.node} (${short(String(manifest.key))}): output ${name} names ${JSON.stringify(String(a.digest)).slice(0, 40)}, not a sha256 digest — ignored, the node is recomputed`);
      throw new Untrusted();
    }
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
        this.corruptBlobs.add(digest);
        await this.remote.dropBlob(digest).catch(() => undefined);
        throw this.corrupt(manifest, name, digest, actual);
      }
      await keep(tmp);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** The digest the remote's bytes under cas/<digest> hash to; undefined when absent. */
  private async remoteBlobDigest(digest: string): Promise<string | undefined> {
    await mkdir(this.store.tmpDir, { recursive: true });
    const tmp = join(this.store.tmpDir, `check-${randomUUID()}`);
    try {
      return (await this.remote.getBlob(digest, tmp)) ? (await sha256File(tmp)).digest : undefined;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Uploads one local output's bytes as cas/<digest>; `overwrite` for a blob proven corrupt there. */
  private async upload(manifest: Manifest, name: string, a: Exclude<Artifact, { type: 'json' }>, overwrite: boolean): Promise<void> {
    const put = (file: string, size: number) => (overwrite ? this.remote.replaceBlob(a.digest, file, size) : this.remote.putBlob(a.digest, file, size));
    if (a.type === 'file' || a.type === 'dir') {
      await put(await this.store.blobs.verified(a.digest, `${manifest.node} output ${name}`), a.size);
      return;
    }
    await mkdir(this.store.tmpDir, { recursive: true });
    const tmp = join(this.store.tmpDir, `push-${randomUUID()}`);
    try {
      const packed = await packRecordSet(this.store.records, a.set, a.meta, tmp);
      if (packed.digest !== a.digest) throw new Error(`${manifest.node} output ${name}: local record set hashes to ${short(packed.digest)}…, expected ${short(a.digest)}… (run \`pipeline cache verify\`)`);
      await put(tmp, packed.size);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Judges the entry already at ac/<key> when ours could not be created: broken (unreadable,
   * unsigned under a key, failing a digest, missing a blob), or good. `deep` also downloads and
   * hashes its blobs (`cache push --repair`), overwriting a corrupt one that ours shares.
   */
  private async inspect(ours: Manifest, deep: boolean): Promise<Found> {
    const stored = await this.remote.readManifest(ours.key);
    if (!stored) return { broken: 'gone', stored: undefined };
    const opened = openManifest(stored.bytes, ours.key, this.options.teamKey);
    if ('problem' in opened) return { broken: opened.problem, stored, ...(opened.badSignature ? { badSignature: true as const } : {}) };
    let repairedBlobs = false;
    for (const [name, a] of Object.entries(opened.manifest.outputs)) {
      if (a.type === 'json') {
        if (digestJSON(a.value) !== a.digest) return { broken: `output ${name} fails its digest`, stored };
        continue;
      }
      if ((a.type !== 'file' && a.type !== 'dir' && a.type !== 'records') || !isDigest(a.digest)) return { broken: `output ${name} is not a known artifact`, stored };
      const mine = ours.outputs[name];
      const shared = mine !== undefined && mine.type === a.type && mine.digest === a.digest;
      if (!deep) {
        // Ours was uploaded just now when it was missing; theirs must be there to be served.
        if (!shared && !(await this.remote.hasBlob(a.digest))) return { broken: `blob of output ${name} missing`, stored };
        continue;
      }
      if ((await this.remoteBlobDigest(a.digest)) === a.digest) continue;
      if (!shared) return { broken: `blob of output ${name} missing or corrupt`, stored };
      await this.upload(ours, name, mine as Exclude<Artifact, { type: 'json' }>, true);
      this.warn(`replaced the corrupt remote blob ${short(a.digest)} of ${ours.node} output ${name}`);
      repairedBlobs = true;
    }
    return { good: opened.manifest, stored, repairedBlobs };
  }

  /** Replaces a broken entry with ours, only while it is the broken one we read. */
  private async supersede(ours: Manifest, sealed: Uint8Array, found: Broken): Promise<PushOutcome> {
    const replaced = found.stored ? await this.remote.replaceManifest(ours.key, sealed, found.stored) : await this.remote.putManifest(ours.key, sealed);
    if (!replaced) return 'present';
    this.warn(`replaced the broken remote entry for ${ours.node} (${short(ours.key)}: ${found.broken}) with this cache's result`);
    return 'repaired';
  }

  /**
   * Another runner's result came first: it is the one everyone uses. The local result is
   * swapped for it, so what this cache builds downstream is keyed on what the remote serves.
   */
  private async adopt(ours: Manifest, theirs: Manifest): Promise<Manifest> {
    const fetched = await this.fetchOutputs(theirs);
    await this.store.invalidate(ours.key);
    const adopted = await this.store.commit(fetched);
    const differing = Object.keys({ ...ours.outputs, ...theirs.outputs }).filter((n) => ours.outputs[n]?.digest !== theirs.outputs[n]?.digest);
    for (const n of differing) if (ours.outputs[n]) this.superseded.add(ours.outputs[n].digest);
    this.warn(
      `${ours.node} (${short(ours.key)}): this cache's result differs from the one already on ${this.url} (output ${differing.join(', ')}; the stage is not bit-reproducible?) — ` +
        `the remote's, committed first, stands and replaces the local one, so downstream nodes are keyed on it`,
    );
    return adopted;
  }

  /**
   * Uploads a finished node: blobs first, the manifest last, so a reader never finds a manifest
   * whose blobs are missing. Blobs are re-checked even when the manifest is already there, which
   * repairs one a reader dropped as corrupt. When an entry is already there, the first committed
   * wins unless it is broken: a broken one is superseded by ours, a good one that differs is
   * adopted here (`store.manifest(key)` is then the remote's).
   */
  async push(manifest: Manifest, options: { repair?: boolean } = {}): Promise<PushOutcome> {
    this.announce();
    const inputs = Object.values(manifest.material.inputs).flatMap((i) => (typeof i === 'string' ? [i] : i.map((e) => e.digest)));
    if (inputs.some((d) => this.superseded.has(d))) {
      this.warn(`not pushing ${manifest.node} (${short(manifest.key)}): it was built on a local result replaced just now by the remote's; a run rebuilds it on that one`);
      return 'orphaned';
    }
    try {
      for (const [name, a] of Object.entries(manifest.outputs)) {
        if (a.type === 'json') continue;
        const corrupt = this.corruptBlobs.has(a.digest);
        if (!corrupt && (await this.remote.hasBlob(a.digest))) continue;
        await this.upload(manifest, name, a, corrupt);
        this.corruptBlobs.delete(a.digest);
      }
      const sealed = sealManifest(manifest, this.options.teamKey);
      if (await this.remote.putManifest(manifest.key, sealed)) return 'pushed';
      const found = await this.inspect(manifest, Boolean(options.repair));
      if ('broken' in found && found.badSignature && !options.repair) {
        // Signed, but not with our key: maybe another team's good entry, maybe our key is wrong.
        this.warn(`left the remote entry for ${manifest.node} (${short(manifest.key)}) alone: ${found.broken}; with the right ${CACHE_KEY_ENV}, \`pipeline cache push --repair\` replaces it`);
        return 'present';
      }
      if ('broken' in found) return await this.supersede(manifest, sealed, found);
      const same = Object.keys({ ...manifest.outputs, ...found.good.outputs }).every((n) => manifest.outputs[n]?.digest === found.good.outputs[n]?.digest);
      if (same) return found.repairedBlobs ? 'repaired' : 'present';
      try {
        await this.adopt(manifest, found.good);
        return 'adopted';
      } catch (err) {
        if (!(err instanceof Untrusted)) throw err;
        // Its blobs failed verification on the way down: it was broken after all.
        return await this.supersede(manifest, sealed, { broken: 'its blobs fail verification', stored: found.stored });
      }
    } catch (err) {
      // A file:// remote this user cannot write fails every node alike: say it once, in words.
      const fsError = err as NodeJS.ErrnoException;
      if (typeof fsError.code === 'string' && fsError.path !== undefined) this.warn(`could not push to ${this.url}: cannot write ${fsError.path} (${fsProblem(err)})`);
      else this.warn(`could not push ${manifest.node} (${short(manifest.key)}) to ${this.url}: ${(err as Error).message}`);
      return 'failed';
    }
  }

  async lease(key: string, owner: string, options: Omit<AcquireOptions, 'onIgnored'> = {}): Promise<LeaseOutcome> {
    this.announce();
    const onIgnored = (l: Lease) => this.warn(`ignoring the remote lease on ${short(key)} held by ${describeHolder(l)}: ${l.problem}`);
    try {
      return (await this.remote.tryAcquire(key, owner, this.policy, { ...options, onIgnored })) ? 'acquired' : 'held';
    } catch (err) {
      this.unavailable(err);
      return 'unavailable';
    }
  }

  async holder(key: string): Promise<Lease | undefined> {
    return this.remote.holder(key, this.policy).catch(() => undefined);
  }

  async renew(key: string, owner: string): Promise<void> {
    await this.remote.renew(key, owner, this.policy).catch((err: unknown) => this.unavailable(err));
  }

  async release(key: string, owner: string): Promise<void> {
    await this.remote.release(key, owner, this.policy).catch((err: unknown) => this.unavailable(err));
  }

  close(): Promise<void> {
    return this.remote.close();
  }
}
