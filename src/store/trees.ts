// Directory artifacts: a tree of files stored as one deterministic tar blob (names sorted,
// fixed modes and times, no owners), so the tree is content-addressed as a whole and travels to
// and from a remote like any file. Consumers get it unpacked, read-only, under trees/<digest>,
// made on first use and shared by every node that reads it.
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BlobStore } from './blobs.js';

const EPOCH = new Date(0);

/** Every regular file under root, as sorted '/'-separated relative paths; anything else is an error. */
// Loaded on first use: a run without directory artifacts does not pay for it at start-up.
const tarStream = () => import('tar-stream');

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) out.push(relative(root, path).split(sep).join('/'));
      else throw new Error(`directory output ${root}: ${relative(root, path)} is not a regular file or directory (links are not stored)`);
    }
  };
  await walk(root);
  return out.sort();
}

/** Packs root into a tar file at target; the same tree always gives the same bytes. */
export async function packTree(root: string, target: string): Promise<{ files: number }> {
  const st = await stat(root).catch(() => undefined);
  if (!st?.isDirectory()) throw new Error(`directory output ${root} is not a directory`);
  const files = await listFiles(root);
  const tar = (await tarStream()).pack();
  const written = pipeline(tar, createWriteStream(target));
  for (const name of files) {
    const path = join(root, name);
    const { size } = await lstat(path);
    const entry = tar.entry({ name, size, mode: 0o644, mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '', type: 'file' });
    await pipeline(createReadStream(path), entry);
  }
  tar.finalize();
  await written;
  return { files: files.length };
}

async function makeReadOnly(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await makeReadOnly(path);
    else await chmod(path, 0o444);
  }
  await chmod(dir, 0o555);
}

/** Gives write permission back so a read-only tree can be deleted. */
export async function removeTree(dir: string): Promise<void> {
  const open = async (d: string): Promise<void> => {
    await chmod(d, 0o755).catch(() => {});
    for (const entry of await readdir(d, { withFileTypes: true }).catch(() => [])) if (entry.isDirectory()) await open(join(d, entry.name));
  };
  await open(dir);
  await rm(dir, { recursive: true, force: true });
}

export class TreeStore {
  /**
   * readOnly: the cache is this user's to read only, so a tree its owner never unpacked
   * (`show -o` of it) is unpacked into a fresh temporary folder of this user's instead: not a
   * fixed, reused path, which another user of the machine could have made first.
   */
  constructor(
    readonly dir: string,
    private readonly blobs: BlobStore,
    private readonly tmpDir: string,
    private readonly readOnly = false,
  ) {}

  pathOf(digest: string): string {
    return join(this.dir, digest);
  }

  /** Stores the tree under root (which is consumed); returns the artifact's digest, size and file count. */
  async put(root: string): Promise<{ digest: string; size: number; files: number }> {
    await mkdir(this.tmpDir, { recursive: true });
    const tmp = join(this.tmpDir, `tree-${randomUUID()}.tar`);
    try {
      const { files } = await packTree(root, tmp);
      const { digest, size } = await this.blobs.put(tmp, { move: true });
      await rm(root, { recursive: true, force: true });
      return { digest, size, files };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** The tree unpacked read-only (made now if needed, from a blob checked against its digest). */
  async materialize(digest: string, what: string): Promise<string> {
    // Trees appear whole, by rename of a finished unpack: one that exists is complete.
    if (await stat(this.pathOf(digest)).then(() => true, () => false)) return this.pathOf(digest);
    const blob = await this.blobs.verified(digest, what);
    const into = this.readOnly ? await mkdtemp(join(tmpdir(), 'medpipe-tree-')) : this.dir;
    const target = join(into, digest);
    const staging = join(into, `.partial-${randomUUID()}`);
    await mkdir(staging, { recursive: true });
    try {
      const ex = (await tarStream()).extract();
      const done = new Promise<void>((resolve, reject) => {
        ex.on('entry', (header, stream, next) => {
          const name = header.name;
          if (header.type !== 'file' || name.startsWith('/') || name.split('/').includes('..')) {
            stream.resume();
            next(new Error(`${what}: tree entry ${JSON.stringify(name)} is not a plain relative file`));
            return;
          }
          const path = join(staging, name);
          mkdir(dirname(path), { recursive: true })
            .then(() => pipeline(stream, createWriteStream(path)))
            .then(() => next(), (err: Error) => next(err));
        });
        ex.on('finish', resolve);
        ex.on('error', reject);
      });
      await pipeline(createReadStream(blob), ex);
      await done;
      await makeReadOnly(staging);
      await rename(staging, target).catch(async (err: NodeJS.ErrnoException) => {
        // Another process unpacked it first: theirs is as good.
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
        await removeTree(staging);
      });
      return target;
    } catch (err) {
      await removeTree(staging);
      throw err;
    }
  }

  /** Unpacked trees not in keep are removed (the blobs stay with their own garbage collection). */
  async prune(keep: Set<string>): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (keep.has(name) || name.startsWith('.partial-')) continue;
      await removeTree(join(this.dir, name));
      removed++;
    }
    return removed;
  }
}
