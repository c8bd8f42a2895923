// Key material for raw data on disk: the digest of every file an import reads (index files and
// images), by relative path, plus the import's problems (so that a missing file appearing later
// changes the key). Condensed to one sha256: a 25k-image listing is too big to carry in a key.
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { FingerprintContext, JSONObject } from '../contract.js';
import type { ImportResult } from './importers/types.js';
import { formatProblem } from './problems.js';

export async function digestFiles(root: string, rels: readonly string[], ctx: FingerprintContext): Promise<{ count: number; sha256: string }> {
  const unique = [...new Set(rels)].sort();
  const absolute = unique.map((r) => path.join(root, r));
  const digests = await ctx.hashFiles(absolute);
  const h = createHash('sha256');
  unique.forEach((rel, i) => {
    const d = digests[absolute[i]];
    if (d === undefined) throw new Error(`hashFiles returned no digest for ${rel}`);
    h.update(`${rel}\t${d}\n`);
  });
  return { count: unique.length, sha256: h.digest('hex') };
}

export async function importFingerprint(root: string, result: ImportResult, ctx: FingerprintContext): Promise<JSONObject> {
  const files = await digestFiles(root, [...result.sources, ...result.items.map((i) => i.path)], ctx);
  const problems = createHash('sha256');
  for (const p of result.problems) problems.update(`${formatProblem(p)}\n`);
  return { files: files.count, sha256: files.sha256, problems: result.problems.length, problems_sha256: problems.digest('hex') };
}
