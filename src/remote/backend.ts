/** Bytes to write: small ones in memory (manifests, leases), large ones from a file (blobs). */
export type Body = { bytes: Uint8Array } | { file: string; size: number };

export interface Stored {
  bytes: Buffer;
  /** Version tag for a conditional replace, where the backend has one (HTTP ETag, S3 ETag). */
  etag?: string;
}

/**
 * The few operations a remote cache needs from a place that stores named objects. Paths are
 * relative and slash-separated (`ac/<key>`, `cas/<sha256>`, `leases/<key>`).
 */
export interface ObjectBackend {
  readonly url: string;
  /**
   * Whether create() and replace() are enforced by the server (O_EXCL/link, conditional PUT).
   * Without it two writers racing on one object both believe they won, and leases add a
   * read-after-write check with a settle delay on top.
   */
  readonly exclusive: boolean;
  read(path: string): Promise<Stored | undefined>;
  /** Copies the object to a local file; false when it is not there. */
  download(path: string, dest: string): Promise<boolean>;
  exists(path: string): Promise<boolean>;
  /** Write-once and atomic: a reader sees all of it or nothing; false when something was there. */
  create(path: string, body: Body): Promise<boolean>;
  /**
   * Overwrites unconditionally, atomically (a reader sees the old or the new object, never a mix).
   * Only for objects that are not content-addressed and may change (checkpoints under ckpt/):
   * ac/ and cas/ stay write-once through create().
   */
  putMutable(path: string, body: Body): Promise<void>;
  /** Replaces the object last read as `expected`; false when it changed meanwhile. */
  replace(path: string, bytes: Uint8Array, expected: Stored): Promise<boolean>;
  /** False where the server does not delete (callers then overwrite instead). */
  remove(path: string): Promise<boolean>;
  close(): Promise<void>;
}

export class RemoteError extends Error {
  constructor(
    readonly url: string,
    message: string,
  ) {
    super(`remote ${url}: ${message}`);
    this.name = 'RemoteError';
  }
}
