import { randomUUID } from 'node:crypto';
import { copyFile, link, mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sha256 } from '../util/hash.js';
import type { Body, ObjectBackend, Stored } from './backend.js';

const code = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** A swap marker older than this was left by a writer killed mid-replace; it no longer guards anything. */
const STALE_MARKER_MS = 30_000;

/**
 * A directory shared by several machines (NFS, SMB, a synced volume). Objects are staged in
 * tmp/ and published with link(), which fails on an existing name: write-once without a server,
 * and a killed writer leaves only a temp file that no reader ever opens.
 */
export class FileBackend implements ObjectBackend {
  readonly exclusive = true;
  readonly url: string;

  constructor(readonly root: string) {
    this.url = pathToFileURL(root).href;
  }

  private abs(path: string): string {
    return join(this.root, ...path.split('/'));
  }

  async read(path: string): Promise<Stored | undefined> {
    try {
      return { bytes: await readFile(this.abs(path)) };
    } catch (err) {
      if (code(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async download(path: string, dest: string): Promise<boolean> {
    try {
      await copyFile(this.abs(path), dest);
      return true;
    } catch (err) {
      if (code(err) === 'ENOENT') return false;
      throw err;
    }
  }

  async exists(path: string): Promise<boolean> {
    try {
      await stat(this.abs(path));
      return true;
    } catch (err) {
      if (code(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** Writes the body to a synced temp file in the remote, so publishing it is one metadata operation. */
  private async stage(body: Body): Promise<string> {
    const tmp = join(this.root, 'tmp', `${randomUUID()}.part`);
    await mkdir(dirname(tmp), { recursive: true });
    if ('file' in body) await copyFile(body.file, tmp);
    else {
      const fh = await open(tmp, 'wx');
      try {
        await fh.writeFile(body.bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    return tmp;
  }

  async create(path: string, body: Body): Promise<boolean> {
    const target = this.abs(path);
    const tmp = await this.stage(body);
    try {
      await mkdir(dirname(target), { recursive: true });
      await link(tmp, target);
      return true;
    } catch (err) {
      if (code(err) === 'EEXIST') return false;
      throw err;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Staged in tmp/ and renamed over the target, so a reader or a killed writer never leaves half an object. */
  async putMutable(path: string, body: Body): Promise<void> {
    const target = this.abs(path);
    const tmp = await this.stage(body);
    try {
      await mkdir(dirname(target), { recursive: true });
      await rename(tmp, target);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Compare-and-swap without a server: the first writer to create the marker named after
   * (path, expected bytes) may swap; it checks the object is still `expected` before the rename.
   * A later writer holding the same stale view finds the marker, or (once it is gone) new bytes.
   */
  async replace(path: string, bytes: Uint8Array, expected: Stored): Promise<boolean> {
    const marker = join(this.root, 'tmp', 'swap', sha256(`${path}\n${sha256(expected.bytes)}`));
    await mkdir(dirname(marker), { recursive: true });
    try {
      await (await open(marker, 'wx')).close();
    } catch (err) {
      if (code(err) !== 'EEXIST') throw err;
      const age = Date.now() - (await stat(marker).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > STALE_MARKER_MS) await rm(marker, { force: true });
      return false;
    }
    try {
      const current = await this.read(path);
      if (!current || !current.bytes.equals(expected.bytes)) return false;
      const tmp = await this.stage({ bytes });
      await rename(tmp, this.abs(path));
      return true;
    } finally {
      await rm(marker, { force: true });
    }
  }

  async remove(path: string): Promise<boolean> {
    try {
      await unlink(this.abs(path));
    } catch (err) {
      if (code(err) !== 'ENOENT') throw err;
    }
    return true;
  }

  async close(): Promise<void> {}
}
