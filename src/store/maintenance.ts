import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestJSON, sha256File } from '../util/hash.js';
import type { Manifest } from './artifacts.js';
import type { Store } from './store.js';
import { removeTree } from './trees.js';

export function listManifests(store: Store): Manifest[] {
  const out: Manifest[] = [];
  for (const { value } of store.manifests.getRange()) out.push(value);
  return out.sort((a, b) => a.provenance.started.localeCompare(b.provenance.started));
}

export interface VerifyProblem {
  key: string;
  node: string;
  output: string;
  problem: string;
}

/** Rehashes every artifact; a manifest with a broken artifact is dropped so the node is recomputed. */
export async function verifyStore(store: Store, options: { drop: boolean }): Promise<{ checked: number; problems: VerifyProblem[] }> {
  const problems: VerifyProblem[] = [];
  const manifests = listManifests(store);
  const blobOk = new Map<string, string | undefined>();
  for (const m of manifests) {
    let broken = false;
    for (const [output, a] of Object.entries(m.outputs)) {
      let problem: string | undefined;
      if (a.type === 'json') {
        if (digestJSON(a.value) !== a.digest) problem = 'json value does not match its digest';
      } else if (a.type === 'file' || a.type === 'dir') {
        if (!blobOk.has(a.digest)) {
          try {
            const { digest } = await sha256File(store.blobs.pathOf(a.digest));
            blobOk.set(a.digest, digest === a.digest ? undefined : `blob content hashes to ${digest.slice(0, 12)}…`);
            if (digest !== a.digest && options.drop) await store.blobs.remove(a.digest);
          } catch (err) {
            blobOk.set(a.digest, `blob missing (${(err as NodeJS.ErrnoException).code})`);
          }
        }
        problem = blobOk.get(a.digest);
        // An unpacked tree is a copy made on demand: dropping it means the next reader unpacks the checked blob afresh.
        if (a.type === 'dir' && options.drop) await removeTree(store.trees.pathOf(a.digest));
      } else {
        const r = store.records.verify(a.set);
        if (!r.ok) problem = r.actual === 'missing' ? 'record set missing' : `record set hashes to ${r.actual.slice(0, 12)}…`;
      }
      if (problem) {
        broken = true;
        problems.push({ key: m.key, node: m.node, output, problem });
      }
    }
    if (broken && options.drop) await store.invalidate(m.key);
  }
  return { checked: manifests.length, problems };
}

export interface GcReport {
  manifests: number;
  blobs: number;
  recordSets: number;
  checkpoints: number;
  bytes: number;
}

async function walkFiles(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return [];
  }
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/**
 * Deletes every manifest not in `keep` and everything no kept manifest points at: blobs,
 * record sets (including sets left by killed writers), checkpoints and logs of dropped keys.
 */
export async function collectGarbage(store: Store, keep: Set<string>, options: { dryRun: boolean }): Promise<GcReport> {
  const report: GcReport = { manifests: 0, blobs: 0, recordSets: 0, checkpoints: 0, bytes: 0 };
  const liveBlobs = new Set<string>();
  const liveSets = new Set<string>();
  const liveLogs = new Set<string>();
  const liveTrees = new Set<string>();
  for (const m of listManifests(store)) {
    if (!keep.has(m.key)) {
      report.manifests++;
      if (!options.dryRun) await store.invalidate(m.key);
      continue;
    }
    liveLogs.add(m.provenance.log);
    for (const a of Object.values(m.outputs)) {
      if (a.type === 'file' || a.type === 'dir') liveBlobs.add(a.digest);
      if (a.type === 'dir') liveTrees.add(a.digest);
      if (a.type === 'records') liveSets.add(a.set);
    }
  }
  for (const path of await walkFiles(store.blobs.dir)) {
    const digest = path.slice(store.blobs.dir.length + 1).replace(/[\\/]/g, '');
    if (liveBlobs.has(digest)) continue;
    report.blobs++;
    report.bytes += (await stat(path)).size;
    if (!options.dryRun) await rm(path, { force: true });
  }
  if (!options.dryRun) await store.trees.prune(liveTrees);
  for (const set of store.records.setIds()) {
    if (liveSets.has(set)) continue;
    report.recordSets++;
    if (!options.dryRun) await store.records.drop(set);
  }
  const checkpointRoot = join(store.dir, 'checkpoints');
  for (const key of await readdir(checkpointRoot).catch(() => [] as string[])) {
    if (keep.has(key) || store.lockHolder(key)) continue;
    report.checkpoints++;
    if (!options.dryRun) await rm(join(checkpointRoot, key), { recursive: true, force: true });
  }
  for (const path of await walkFiles(join(store.dir, 'logs'))) {
    const rel = path.slice(store.dir.length + 1);
    if (!liveLogs.has(rel) && !options.dryRun) await rm(path, { force: true });
  }
  // Scratch space of nodes that died; a running node touches its workdir, so keep recent ones.
  for (const name of await readdir(store.tmpDir).catch(() => [] as string[])) {
    const path = join(store.tmpDir, name);
    const st = await stat(path).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 6 * 3600_000 && !options.dryRun) await rm(path, { recursive: true, force: true });
  }
  return report;
}
