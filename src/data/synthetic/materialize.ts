// Writing a synthetic data set to a user-visible directory, safely and reproducibly.
//
// A directory is not one of the contract's artifact types, so the synthesize stage writes the
// data set to `dest` and outputs {dest, params, files: {relpath: sha256}}. Downstream keys follow
// the digests. Because the directory lives outside the cache (a cache hit pulled from a remote
// leaves it absent), consumers call ensureDataset(): it verifies the digests and, if the
// directory is missing or differs, regenerates it from the recorded params (generation is
// deterministic) and verifies again.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { synthesize, type SynthesizeOptions } from './index.js';

export const MARKER = '.medpipe-synthetic.json';

/**
 * Regenerates dest from scratch. Refuses to replace a non-empty directory that it did not
 * create (no marker file): `dest: .` must never wipe a user's project.
 */
export async function materialize(dest: string, opts: SynthesizeOptions): Promise<Record<string, string>> {
  let entries: string[] = [];
  try {
    entries = await fs.readdir(dest);
  } catch {
    entries = [];
  }
  if (entries.length > 0 && !entries.includes(MARKER)) {
    throw new Error(`synthesize: ${dest} exists, is not empty and was not written by synthesize (no ${MARKER}); choose another dest or empty it`);
  }
  const partial = `${dest}.partial-${process.pid}`;
  await fs.rm(partial, { recursive: true, force: true });
  await fs.mkdir(partial, { recursive: true });
  try {
    const files = await synthesize(partial, opts);
    await fs.writeFile(path.join(partial, MARKER), `${JSON.stringify(opts, null, 2)}\n`);
    await fs.rm(dest, { recursive: true, force: true });
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.rename(partial, dest);
    return files;
  } catch (e) {
    await fs.rm(partial, { recursive: true, force: true });
    throw e;
  }
}

/** Relative paths whose file under root is missing or has another digest. */
export async function differingFiles(root: string, files: Record<string, string>): Promise<string[]> {
  const bad: string[] = [];
  for (const [rel, digest] of Object.entries(files)) {
    try {
      const actual = createHash('sha256').update(await fs.readFile(path.join(root, rel))).digest('hex');
      if (actual !== digest) bad.push(rel);
    } catch {
      bad.push(rel);
    }
  }
  return bad;
}

export interface SyntheticSource {
  dest: string;
  params: SynthesizeOptions;
  files: Record<string, string>;
}

/** Makes sure root holds exactly the recorded data set; returns what had to be done. */
export async function ensureDataset(root: string, source: SyntheticSource): Promise<'present' | 'regenerated'> {
  if ((await differingFiles(root, source.files)).length === 0) return 'present';
  await materialize(root, source.params);
  const still = await differingFiles(root, source.files);
  if (still.length > 0) {
    throw new Error(
      `synthetic data set at ${source.dest} differs from the recorded digests even after regenerating ` +
        `(${still.length} files, e.g. ${still.slice(0, 3).join(', ')}); a different sharp/libvips version encodes differently — rerun the synthesize node`,
    );
  }
  return 'regenerated';
}
