import { existsSync } from 'node:fs';
import { copyFile, link, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { nodeKey } from '../keys.js';
import { digestJSON } from '../util/hash.js';
import type { Artifact, Manifest } from './artifacts.js';
import { heldForRepair, holdingForRepair, liveHolders } from './cache-lock.js';
import { cannotLink } from './errors.js';
import { padIndexFile } from './index-file.js';
import { probeIndex, runIndexChild } from './index-probe.js';
import { assertManifestNames, Store } from './store.js';

/** What rebuilding the index from the manifest files did. */
export interface Rebuilt {
  reindexed: number;
  salvagedSets: number;
  skipped: { file: string; why: string }[];
}

export interface RepairReport extends Rebuilt {
  healthy: boolean;
  indexFile: string;
  /** Why the index was rebuilt, and where the damaged file now lies. */
  damage?: { problem: string; keptAt?: string };
  /** The signal that ended the salvage from the damaged copy, when it faulted (the index was rebuilt without it). */
  salvageFault?: string;
}

/** A manifest file's key material must hash to its key, its name must be that key. */
function checkedManifest(file: string, text: string): Manifest {
  const m = JSON.parse(text) as Manifest;
  if (basename(file) !== `${m.key}.json`) throw new Error(`file name does not match its key ${String(m.key).slice(0, 12)}…`);
  assertManifestNames(m);
  if (nodeKey(m.material) !== m.key) throw new Error('its key material does not hash to its key');
  return m;
}

async function manifestFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(dir, 'manifests'), { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => e.isFile() && e.name.endsWith('.json')).map((e) => join(e.parentPath, e.name));
}

/** Record sets of the damaged index, read where they still can be; each is checked against its digest on import. */
class Salvage {
  private readonly records: Database<Buffer, [string, number]> | undefined;
  private readonly byDigest: Database<string, string> | undefined;
  private readonly imported = new Map<string, string>();
  count = 0;

  constructor(private readonly root: RootDatabase | undefined) {
    const table = <T>(make: () => T | undefined): T | undefined => {
      try {
        return make();
      } catch {
        return undefined;
      }
    };
    this.records = table(() => root?.openDB<Buffer, [string, number]>({ name: 'records', encoding: 'binary' }));
    this.byDigest = table(() => root?.openDB<string, string>({ name: 'recordsets-by-digest', encoding: 'string' }));
  }

  /** The set's id in the damaged index: the manifest's, else the one its digest was stored under. */
  private oldSet(a: Extract<Artifact, { type: 'records' }>): string {
    if (a.count === 0 || this.records?.get([a.set, 0])) return a.set;
    try {
      return this.byDigest?.get(a.digest) ?? a.set;
    } catch {
      return a.set;
    }
  }

  async recordSet(into: Store, a: Extract<Artifact, { type: 'records' }>): Promise<string> {
    const known = this.imported.get(a.set) ?? into.records.findByDigest(a.digest);
    if (known) return known;
    const records = this.records;
    if (!records) throw new Error('its record set lived in the old index, which is lost or whose record table LMDB cannot open');
    const from = this.oldSet(a);
    async function* raw(): AsyncGenerator<Buffer> {
      for (let i = 0; i < a.count; i++) {
        const bytes = records!.get([from, i]);
        if (!bytes) throw new Error(`record ${i} of its record set is lost`);
        yield Buffer.from(bytes);
      }
    }
    const { set } = await into.records.importRaw(raw(), a.meta, a.digest);
    this.imported.set(a.set, set);
    this.count++;
    return set;
  }

  async close(): Promise<void> {
    await this.root?.close();
  }
}

/**
 * Rebuilds index.lmdb from the manifest files when it cannot be read: each manifest whose key,
 * json values, blobs and record sets (salvaged from the damaged index, checked against their
 * digests) all verify is indexed again; the rest are recomputed by the next run. The damaged
 * file is kept aside (a hard link to it), never deleted.
 *
 * Repair holds the cache (REPAIR_LOCK) and is refused while a run holds it, and a run is refused
 * while repair holds it. The new index is built in a temporary file beside the old one and
 * renamed over index.lmdb once whole and closed, so whoever opens the index meanwhile (a status,
 * a run about to be refused) finds the old file or the new one, never a half-built one. A process
 * that has the old file open keeps reading the old inode (the damaged or, when lost, empty
 * index) until it opens the cache again: rename leaves open files alone on POSIX.
 *
 * Whether the index reads whole, the holders of a damaged one, and the salvage from it, are read
 * in a child process: a damaged page can fault (SIGBUS) instead of failing. When the salvage
 * faults, the index is rebuilt again without it: results held only in record sets of the damaged
 * index are then recomputed, blobs and json values are kept.
 */
export async function repairIndex(dir: string): Promise<RepairReport> {
  return holdingForRepair(dir, () => repairHeld(dir));
}

async function repairHeld(dir: string): Promise<RepairReport> {
  const indexFile = join(dir, 'index.lmdb');
  const report: RepairReport = { healthy: false, indexFile, reindexed: 0, salvagedSets: 0, skipped: [] };
  const problem = await probeIndex(dir);
  if (problem === undefined) {
    const store = new Store(dir);
    try {
      const holder = liveHolders(store)[0];
      if (holder) throw heldForRepair(dir, holder);
      // Healthy: make sure every manifest also has its file, for a repair later.
      for (const { value } of store.manifests.getRange()) await store.keepManifestFile(value);
    } finally {
      await store.close();
    }
    return { ...report, healthy: true };
  }

  // Lost, not damaged: nothing to keep aside or salvage from (its record sets are gone with it), nor anyone holding it.
  if (!existsSync(indexFile)) {
    report.damage = { problem };
    return { ...report, ...(await intoPlace(dir, (into) => rebuildIndex(dir, undefined, { salvage: false }, into))) };
  }
  const held = await runIndexChild<{ holders: Parameters<typeof heldForRepair>[1][] } | { error: string }>(['holders', dir]);
  // A holder table that cannot be read (the child faulted or failed) names no one: a run that
  // took its hold there would have failed on the same pages.
  const holder = held.answer && 'holders' in held.answer ? held.answer.holders[0] : undefined;
  if (holder) throw heldForRepair(dir, holder);

  const keptAt = `${indexFile}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  // A second name for the damaged file: index.lmdb stays in place until the new one replaces it
  // (a copy where the file system cannot link: exFAT, vfat, many SMB mounts).
  await link(indexFile, keptAt).catch(async (err: unknown) => {
    if (!cannotLink(err)) throw err;
    await copyFile(indexFile, keptAt);
  });
  report.damage = { problem, keptAt };
  try {
    const salvaged = await intoPlace(dir, async (into) => {
      const salvaging = await runIndexChild<Rebuilt | { error: string }>(['rebuild', dir, keptAt, into]);
      if (salvaging.answer && 'error' in salvaging.answer) throw new Error(salvaging.answer.error);
      if (salvaging.answer) return salvaging.answer;
      // The salvage faulted on a damaged page: start the new index again, without it.
      await removeIndexFile(into);
      report.salvageFault = salvaging.signal!;
      return rebuildIndex(dir, keptAt, { salvage: false }, into);
    });
    return { ...report, ...salvaged };
  } catch (err) {
    // A rebuild that fails (disk full, no permission) leaves the damaged index where it was, under one name.
    await rm(keptAt, { force: true });
    throw err;
  }
}

async function removeIndexFile(file: string): Promise<void> {
  await rm(file, { force: true });
  await rm(`${file}-lock`, { force: true });
}

/** Runs `build` into a temporary index file in DIR, then renames it over index.lmdb; on failure, removes it. */
async function intoPlace<T>(dir: string, build: (into: string) => Promise<T>): Promise<T> {
  const indexFile = join(dir, 'index.lmdb');
  const into = join(dir, `index.lmdb.rebuilding-${process.pid}`);
  await removeIndexFile(into);
  let built: T;
  try {
    built = await build(into);
  } catch (err) {
    await removeIndexFile(into);
    throw err;
  }
  // The environment that built it is closed (build awaits its close). Its lock file goes with
  // it, over the old one's: a process that still has the old index open keeps the old lock
  // file's inode too, and the next to open the new index is its first user, which resets it.
  await rename(`${into}-lock`, `${indexFile}-lock`).catch(() => rm(`${indexFile}-lock`, { force: true }));
  await rename(into, indexFile);
  return built;
}

/** Indexes every manifest file that verifies into a new index file `into` (record sets salvaged from `keptAt` when asked). */
export async function rebuildIndex(dir: string, keptAt: string | undefined, options: { salvage: boolean }, into: string): Promise<Rebuilt> {
  const out: Rebuilt = { reindexed: 0, salvagedSets: 0, skipped: [] };
  let old: RootDatabase | undefined;
  if (options.salvage && keptAt !== undefined && padIndexFile(keptAt)) {
    try {
      old = open({ path: keptAt, readOnly: true, maxDbs: 16, mapSize: 2 ** 40 });
    } catch {
      old = undefined;
    }
  }
  const salvage = new Salvage(old);
  const store = new Store(dir, { rebuildingInto: into });
  try {
    for (const file of await manifestFiles(dir)) {
      try {
        const m = checkedManifest(file, await readFile(file, 'utf8'));
        const outputs: Record<string, Artifact> = {};
        for (const [name, a] of Object.entries(m.outputs)) {
          if (a.type === 'json') {
            if (digestJSON(a.value) !== a.digest) throw new Error(`output ${name}: json value does not match its digest`);
            outputs[name] = a;
          } else if (a.type === 'file' || a.type === 'dir') {
            await store.blobs.verified(a.digest, `output ${name}`);
            outputs[name] = a;
          } else outputs[name] = { ...a, set: await salvage.recordSet(store, a) };
        }
        await store.manifests.put(m.key, { ...m, outputs });
        out.reindexed++;
      } catch (err) {
        out.skipped.push({ file, why: (err as Error).message });
        await rm(file, { force: true });
      }
    }
  } finally {
    out.salvagedSets = salvage.count;
    await salvage.close();
    await store.close();
  }
  return out;
}

export function formatRepair(r: RepairReport): string {
  if (r.healthy) return `cache index ${r.indexFile} reads whole: nothing to repair\n`;
  const lines = [
    r.damage!.keptAt === undefined ? `cache index ${r.indexFile} was missing (${r.damage!.problem}); a new one was made` : `cache index ${r.indexFile} was damaged (${r.damage!.problem}); the damaged file is kept as ${r.damage!.keptAt}`,
    ...(r.salvageFault ? [`salvaging record sets from the damaged file crashed (${r.salvageFault}); the index was rebuilt without them`] : []),
    `re-indexed ${r.reindexed} result(s) (${r.salvagedSets} record set(s) salvaged from the damaged index); ${r.skipped.length} could not be verified and will be recomputed by the next run`,
    ...r.skipped.map((s) => `  ${basename(s.file, '.json').slice(0, 12)}: ${s.why}`),
  ];
  return lines.join('\n') + '\n';
}
