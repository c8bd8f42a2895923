import { assertDigest } from '../store/names.js';
import type { ObjectBackend, Stored } from './backend.js';
import { Leases, type AcquireOptions, type Lease, type LeasePolicy } from './leases.js';

export type { AcquireOptions, Lease, LeasePolicy } from './leases.js';

/**
 * A cache shared between machines: manifests under ac/<node key>, blobs under cas/<sha256>,
 * and the mutable checkpoints of nodes still running under ckpt/<node key>/<name>.
 */
export interface RemoteStore {
  readonly url: string;
  /** As it was opened, credentials included (url drops them), so a worker process can open it again. */
  readonly spec: string;
  getManifest(key: string): Promise<Uint8Array | undefined>;
  /** The entry with its version tag, for a conditional replaceManifest. */
  readManifest(key: string): Promise<Stored | undefined>;
  /** Write-once: false when an entry was already there (the first one stays). */
  putManifest(key: string, bytes: Uint8Array): Promise<boolean>;
  /**
   * Supersedes an entry proven broken (unreadable, unsigned under a team key, failing its
   * digests), only while it is still the one read as `broken`: false when it changed meanwhile.
   */
  replaceManifest(key: string, bytes: Uint8Array, broken: Stored): Promise<boolean>;
  hasBlob(digest: string): Promise<boolean>;
  /** Downloads into `dest`; false when absent. The caller verifies the digest. */
  getBlob(digest: string, dest: string): Promise<boolean>;
  putBlob(digest: string, file: string, size: number): Promise<boolean>;
  /** Drops a blob a reader proved corrupt, so the next push can upload it again. */
  dropBlob(digest: string): Promise<void>;
  /** Overwrites a blob whose bytes were proven not to hash to its name (a server without DELETE keeps them). */
  replaceBlob(digest: string, file: string, size: number): Promise<void>;
  /** Overwrites: a checkpoint is the latest state of a run, not a result. */
  putCheckpoint(key: string, name: string, bytes: Uint8Array): Promise<void>;
  getCheckpoint(key: string, name: string): Promise<Uint8Array | undefined>;
  dropCheckpoint(key: string, name: string): Promise<void>;
  tryAcquire(key: string, owner: string, policy: LeasePolicy, options?: AcquireOptions): Promise<boolean>;
  renew(key: string, owner: string, policy: LeasePolicy): Promise<boolean>;
  release(key: string, owner: string, policy: LeasePolicy): Promise<void>;
  holder(key: string, policy: LeasePolicy): Promise<Lease | undefined>;
  close(): Promise<void>;
}

/** Names come from manifests read off the remote: never let one address a path outside it. */
const checked = (name: string): string => assertDigest(name, 'remote object name');

/** Checkpoint names come from stage code; keep them one plain path segment on every backend. */
function checkpointPath(key: string, name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) throw new Error(`checkpoint name ${JSON.stringify(name).slice(0, 80)} is not a plain file name`);
  return `ckpt/${checked(key)}/${name}`;
}

/** The RemoteStore every backend shares: layout and leases over the backend's few operations. */
export class ObjectRemote implements RemoteStore {
  private readonly leases: Leases;

  readonly spec: string;

  constructor(
    readonly backend: ObjectBackend,
    spec?: string,
  ) {
    this.spec = spec ?? backend.url;
    this.leases = new Leases(backend);
  }

  get url(): string {
    return this.backend.url;
  }

  async getManifest(key: string): Promise<Uint8Array | undefined> {
    return (await this.backend.read(`ac/${checked(key)}`))?.bytes;
  }

  readManifest(key: string): Promise<Stored | undefined> {
    return this.backend.read(`ac/${checked(key)}`);
  }

  putManifest(key: string, bytes: Uint8Array): Promise<boolean> {
    return this.backend.create(`ac/${checked(key)}`, { bytes });
  }

  replaceManifest(key: string, bytes: Uint8Array, broken: Stored): Promise<boolean> {
    return this.backend.replace(`ac/${checked(key)}`, bytes, broken);
  }

  hasBlob(digest: string): Promise<boolean> {
    return this.backend.exists(`cas/${checked(digest)}`);
  }

  getBlob(digest: string, dest: string): Promise<boolean> {
    return this.backend.download(`cas/${checked(digest)}`, dest);
  }

  putBlob(digest: string, file: string, size: number): Promise<boolean> {
    return this.backend.create(`cas/${checked(digest)}`, { file, size });
  }

  async dropBlob(digest: string): Promise<void> {
    await this.backend.remove(`cas/${checked(digest)}`);
  }

  replaceBlob(digest: string, file: string, size: number): Promise<void> {
    return this.backend.putMutable(`cas/${checked(digest)}`, { file, size });
  }

  // async: a bad name must reject, not throw, so a background upload's catch sees it.
  async putCheckpoint(key: string, name: string, bytes: Uint8Array): Promise<void> {
    return this.backend.putMutable(checkpointPath(key, name), { bytes });
  }

  async getCheckpoint(key: string, name: string): Promise<Uint8Array | undefined> {
    return (await this.backend.read(checkpointPath(key, name)))?.bytes;
  }

  async dropCheckpoint(key: string, name: string): Promise<void> {
    await this.backend.remove(checkpointPath(key, name));
  }

  tryAcquire(key: string, owner: string, policy: LeasePolicy, options?: AcquireOptions): Promise<boolean> {
    return this.leases.tryAcquire(checked(key), owner, policy, options);
  }

  renew(key: string, owner: string, policy: LeasePolicy): Promise<boolean> {
    return this.leases.renew(checked(key), owner, policy);
  }

  release(key: string, owner: string, policy: LeasePolicy): Promise<void> {
    return this.leases.release(checked(key), owner, policy);
  }

  holder(key: string, policy: LeasePolicy): Promise<Lease | undefined> {
    return this.leases.holder(checked(key), policy);
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}
