import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File } from '../util/hash.js';
import { CorruptArtifactError } from './artifacts.js';
import { writingCache } from './errors.js';
import { assertDigest } from './names.js';

/** Content-addressed files: cas/<2 hex>/<62 hex>, written by rename so a reader never sees half a blob. */
export class BlobStore {
  constructor(
    readonly dir: string,
    private readonly tmpDir: string,
  ) {}

  /** Throws InvalidNameError for anything but a sha256 digest: a manifest may come from a remote. */
  pathOf(digest: string): string {
    assertDigest(digest, 'blob digest');
    return join(this.dir, digest.slice(0, 2), digest.slice(2));
  }

  async has(digest: string): Promise<boolean> {
    const path = this.pathOf(digest);
    try {
      await stat(path);
      return true;
    } catch {
      return false;
    }
  }

  /** Moves (or copies, across devices) a file into the store; returns its digest and size. */
  async put(source: string, options: { move: boolean }): Promise<{ digest: string; size: number }> {
    const { digest, size } = await sha256File(source);
    const target = this.pathOf(digest);
    // Always replace: a blob already there under this name may have rotted (same size, other
    // bytes), and these bytes were just hashed. The rename is atomic; readers keep their inode.
    await writingCache(this.dir, `store blob ${digest.slice(0, 12)}…`, async () => {
      await mkdir(join(this.dir, digest.slice(0, 2)), { recursive: true });
      const staging = join(this.tmpDir, `blob-${randomUUID()}`);
      await mkdir(this.tmpDir, { recursive: true });
      if (options.move) {
        try {
          await rename(source, staging);
        } catch {
          await copyFile(source, staging);
          await rm(source, { force: true });
        }
      } else await copyFile(source, staging);
      await rename(staging, target);
    });
    return { digest, size };
  }

  /** The blob's path after checking its bytes still hash to its name. */
  async verified(digest: string, what: string): Promise<string> {
    const path = this.pathOf(digest);
    let actual: string;
    try {
      actual = (await sha256File(path)).digest;
    } catch (err) {
      throw new CorruptArtifactError(`${what} (blob missing: ${(err as NodeJS.ErrnoException).code})`, digest, 'none');
    }
    if (actual !== digest) throw new CorruptArtifactError(what, digest, actual);
    return path;
  }

  async remove(digest: string): Promise<void> {
    await rm(this.pathOf(digest), { force: true });
  }
}
