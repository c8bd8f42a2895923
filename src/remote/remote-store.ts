import type { ObjectBackend } from './backend.js';
import { Leases, type Lease } from './leases.js';

export type { Lease } from './leases.js';

/**
 * A cache shared between machines: manifests under ac/<node key>, blobs under cas/<sha256>,
 * and the mutable checkpoints of nodes still running under ckpt/<node key>/<name>.
 */
export interface RemoteStore {
  readonly url: string;
  /** As it was opened, credentials included (url drops them), so a worker process can open it again. */
  readonly spec: string;
  getManifest(key: string): Promise<Uint8Array | undefined>;
  /** Write-once: false when an entry was already there (the first one stays). */
  putManifest(key: string, bytes: Uint8Array): Promise<boolean>;
  hasBlob(digest: string): Promise<boolean>;
  /** Downloads into `dest`; false when absent. The caller verifies the digest. */
  getBlob(digest: string, dest: string): Promise<boolean>;
  putBlob(digest: string, file: string, size: number): Promise<boolean>;
  /** Drops a blob a reader proved corrupt, so the next push can upload it again. */
  dropBlob(digest: string): Promise<void>;
  /** Overwrites: a checkpoint is the latest state of a run, not a result. */
  putCheckpoint(key: string, name: string, bytes: Uint8Array): Promise<void>;
  getCheckpoint(key: string, name: string): Promise<Uint8Array | undefined>;
  dropCheckpoint(key: string, name: string): Promise<void>;
  tryAcquire(key: string, owner: string, ttlMs: number): Promise<boolean>;
  renew(key: string, owner: string, ttlMs: number): Promise<boolean>;
  release(key: string, owner: string): Promise<void>;
  holder(key: string): Promise<Lease | undefined>;
  close(): Promise<void>;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Names come from manifests read off the remote: never let one address a path outside it. */
function checked(name: string): string {
  if (!HEX64.test(name)) throw new Error(`not a sha256 digest: ${JSON.stringify(name).slice(0, 80)}`);
  return name;
}

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

  putManifest(key: string, bytes: Uint8Array): Promise<boolean> {
    return this.backend.create(`ac/${checked(key)}`, { bytes });
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

  tryAcquire(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.leases.tryAcquire(checked(key), owner, ttlMs);
  }

  renew(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.leases.renew(checked(key), owner, ttlMs);
  }

  release(key: string, owner: string): Promise<void> {
    return this.leases.release(checked(key), owner);
  }

  holder(key: string): Promise<Lease | undefined> {
    return this.leases.holder(checked(key));
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}
