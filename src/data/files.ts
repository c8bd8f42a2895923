// File-system helpers for importers: existence checks that list each directory once (25k stat
// calls on a network drive are slow), recursive listing in a stable order, POSIX relative paths.
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Converts a relative path to POSIX separators, so ids and keys are the same on every OS. */
export function toPosix(p: string): string {
  return p.split(path.sep).join('/');
}

/** Python-style ordinal string order (not locale order), so listings match `sorted(os.listdir())`. */
export function ordinal(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Answers "does root/rel exist as a file?" by listing each directory once. */
export class FileIndex {
  private readonly dirs = new Map<string, Promise<Map<string, 'file' | 'dir'> | undefined>>();

  constructor(readonly root: string) {}

  private listing(dir: string): Promise<Map<string, 'file' | 'dir'> | undefined> {
    let p = this.dirs.get(dir);
    if (!p) {
      p = fs.readdir(path.join(this.root, dir), { withFileTypes: true }).then(
        (entries) => new Map(entries.map((e) => [e.name, e.isDirectory() ? 'dir' : 'file'] as const)),
        () => undefined,
      );
      this.dirs.set(dir, p);
    }
    return p;
  }

  async isFile(rel: string): Promise<boolean> {
    const posix = rel.split('\\').join('/');
    const slash = posix.lastIndexOf('/');
    const dir = slash < 0 ? '' : posix.slice(0, slash);
    const entries = await this.listing(dir);
    return entries?.get(posix.slice(slash + 1)) === 'file';
  }

  async isDir(rel: string): Promise<boolean> {
    try {
      return (await fs.stat(path.join(this.root, rel))).isDirectory();
    } catch {
      return false;
    }
  }

  /** Immediate entries of a directory, sorted ordinally; empty when it does not exist. */
  async entries(rel: string): Promise<{ name: string; kind: 'file' | 'dir' }[]> {
    const entries = await this.listing(rel);
    if (!entries) return [];
    return [...entries].map(([name, kind]) => ({ name, kind })).sort((a, b) => ordinal(a.name, b.name));
  }

  /** Every file under rel (relative to root, POSIX), depth first in ordinal order. */
  async walk(rel: string): Promise<string[]> {
    const out: string[] = [];
    for (const e of await this.entries(rel)) {
      const child = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.kind === 'dir') out.push(...(await this.walk(child)));
      else out.push(child);
    }
    return out;
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}
