import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestJSON, sha256File } from '../util/hash.js';
import type { Manifest } from './artifacts.js';
import { isDigest } from './names.js';
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

/** Every input digest a result was computed from, by input name (the key material says). */
function consumedDigests(m: Manifest): [input: string, digest: string][] {
  const out: [string, string][] = [];
  for (const [name, input] of Object.entries(m.material?.inputs ?? {})) {
    if (typeof input === 'string') out.push([name, input]);
    else if (Array.isArray(input)) for (const e of input) out.push([name, e.digest]);
  }
  return out;
}

/**
 * Rehashes every artifact; a manifest with a broken artifact is dropped so the node is
 * recomputed, and so is every result that may have been computed from the broken bytes (its
 * key names the input's digest, the bytes it read were not those): consumers of a json value
 * (handed over unchecked) and of a record set without per-record checksums (written by an
 * older medpipe, read unchecked). Consumers of a file, or of a set with checksums, checked
 * each byte as they read it and keep their results. Broken blobs and record sets are removed
 * too, so a recomputed producer writes them afresh instead of adopting them.
 */
export async function verifyStore(store: Store, options: { drop: boolean }): Promise<{ checked: number; problems: VerifyProblem[] }> {
  if (options.drop) store.assertWritable('drop broken results (`cache verify --keep` reports them without dropping)');
  const problems: VerifyProblem[] = [];
  // An index that cannot be read whole is an error (IndexDamagedError), never "0 problems".
  store.checkReadable();
  const storedKey = new Map<Manifest, string>();
  for (const { key, value } of store.manifests.getRange()) storedKey.set(value, key);
  const manifests = [...storedKey.keys()];
  const blobOk = new Map<string, string | undefined>();
  const setOk = new Map<string, string | undefined>();
  const dropped = new Set<string>();
  /** Digest whose consumers may have read broken bytes -> where it was found broken. */
  const brokenDigests = new Map<string, string>();
  const brokenSets = new Set<string>();
  for (const m of manifests) {
    let broken = false;
    const storedAs = storedKey.get(m)!;
    if (m.key !== storedAs) {
      problems.push({ key: storedAs, node: m.node, output: '(all)', problem: `manifest names key ${JSON.stringify(String(m.key)).slice(0, 40)}, not the key it is stored under` });
      dropped.add(storedAs);
      continue;
    }
    for (const [output, a] of Object.entries(m.outputs)) {
      let problem: string | undefined;
      if (!isDigest(a.digest)) {
        // Never a path: a hostile `../../file` would otherwise be hashed, then removed as corrupt.
        problem = `names ${JSON.stringify(String(a.digest)).slice(0, 40)}, not a sha256 digest (nothing outside the cache was touched)`;
      } else if (a.type === 'json') {
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
        if (!setOk.has(a.set)) {
          const r = store.records.verify(a.set);
          setOk.set(a.set, r.ok ? undefined : r.actual === 'missing' ? 'record set missing' : r.actual.startsWith('record') ? `record set: ${r.actual}` : `record set hashes to ${r.actual.slice(0, 12)}…`);
          if (!r.ok && r.actual !== 'missing') brokenSets.add(a.set);
        }
        problem = setOk.get(a.set);
      }
      if (problem) {
        broken = true;
        const readUnchecked = a.type === 'json' || (a.type === 'records' && !store.records.hasRecordSums(a.set));
        if (isDigest(a.digest) && readUnchecked) brokenDigests.set(a.digest, `output ${output} of ${m.node}`);
        problems.push({ key: m.key, node: m.node, output, problem });
      }
    }
    if (broken) dropped.add(m.key);
  }
  for (const m of manifests) {
    if (dropped.has(m.key)) continue;
    const input = consumedDigests(m).find(([, digest]) => brokenDigests.has(digest));
    if (!input) continue;
    dropped.add(m.key);
    problems.push({ key: m.key, node: m.node, output: '(all)', problem: `computed from input ${input[0]} = ${brokenDigests.get(input[1])}, which is broken` });
  }
  if (options.drop) {
    for (const key of dropped) await store.invalidate(key);
    for (const set of brokenSets) await store.records.drop(set);
  }
  // Results from before manifests were kept as files get theirs, so `cache repair` can use them.
  if (!store.readOnly) for (const m of manifests) if (!dropped.has(m.key) && isDigest(m.key)) await store.keepManifestFile(m);
  return { checked: manifests.length, problems };
}

export interface GcReport {
  manifests: number;
  /** The results deleted (or, in a dry run, that would be). */
  dropped: Pick<Manifest, 'key' | 'pipeline' | 'node'>[];
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
 * Deletes every manifest not in `keep` (and, when given, in `onlyDrop`) and everything no kept manifest points at: blobs,
 * record sets (including sets left by killed writers), checkpoints and logs of dropped keys.
 */
export async function collectGarbage(store: Store, keep: Set<string>, options: { dryRun: boolean; onlyDrop?: Set<string> }): Promise<GcReport> {
  const report: GcReport = { manifests: 0, dropped: [], blobs: 0, recordSets: 0, checkpoints: 0, bytes: 0 };
  const liveBlobs = new Set<string>();
  const liveSets = new Set<string>();
  const liveLogs = new Set<string>();
  const liveTrees = new Set<string>();
  for (const m of listManifests(store)) {
    // onlyDrop: what the user was shown and agreed to; anything committed since stays.
    if (!keep.has(m.key) && (!options.onlyDrop || options.onlyDrop.has(m.key))) {
      report.manifests++;
      report.dropped.push({ key: m.key, pipeline: m.pipeline, node: m.node });
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
