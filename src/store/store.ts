import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdir, rename, rm, readFile, writeFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { open, type Database, type DatabaseOptions, type Key, type RootDatabase } from 'lmdb';
import { BlobStore } from './blobs.js';
import type { Manifest, NameRecord } from './artifacts.js';
import { CacheIOError, cannotWrite, ReadOnlyCacheError, writingCache } from './errors.js';
import { checkIndexFile, IndexDamagedError, jsonEncoder, type ReadableTable } from './index-file.js';
import { assertDigest, isDigest } from './names.js';
import { RecordSets } from './records.js';
import { TreeStore } from './trees.js';
import { ConfigError } from '../util/errors.js';
import { sha256File } from '../util/hash.js';
import { processAlive } from '../util/process.js';
import { CACHE_ENV } from './cache-dir.js';

export { CACHE_ENV, defaultCacheDir } from './cache-dir.js';

const CHECKPOINT_MAGIC = Buffer.from('medpipe-local-ckpt/1\n');

/** Creates the cache folder; one that cannot be made is a bad `--cache`, said in words. */
function makeCacheDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    let existing = dirname(dir);
    while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
    const why =
      code === 'EEXIST' ? `${dir} is a file, not a folder`
      : code === 'ENOTDIR' ? `${existing} is a file, not a folder`
      : code === 'EACCES' || code === 'EPERM' ? `this user may not create folders in ${existing}`
      : code === 'EROFS' ? `${existing} is on a read-only file system`
      : (err as Error).message;
    throw new ConfigError(`cannot create the cache folder ${dir}: ${why}; give one this user can write with --cache DIR (or $${CACHE_ENV})`);
  }
}

export interface LockRecord {
  owner: string;
  host: string;
  pid: number;
  node: string;
  expires: number;
}

interface FileHashRecord {
  size: number;
  mtimeMs: number;
  /** Change time and inode: no tool sets them back (cp -p and rsync -t keep the mtime of other bytes). Absent in older records, which are rehashed once. */
  ctimeMs?: number;
  ino?: number;
  digest: string;
}

/**
 * Whether the cache's manifests/ holds a result's manifest file: the index that listed them is
 * then lost, not new. Read only when index.lmdb is missing (a new cache has no manifests/).
 */
function holdsManifestFiles(cacheDir: string): boolean {
  const dir = join(cacheDir, 'manifests');
  if (!existsSync(dir)) return false;
  for (const sub of readdirSync(dir, { withFileTypes: true })) {
    if (sub.isDirectory() && readdirSync(join(dir, sub.name)).some((f) => f.endsWith('.json'))) return true;
  }
  return false;
}

/** A table a read-only index never had reads as empty (LMDB cannot create it without writing). */
function emptyTable<V, K extends Key>(): Database<V, K> {
  const none: Iterable<never> = [];
  const table = { get: () => undefined, getBinary: () => undefined, getRange: () => none, getKeys: () => none, getKeysCount: () => 0, doesExist: () => false, resetReadTxn: () => {} };
  return table as unknown as Database<V, K>;
}

/**
 * The index as this user may open it: read-write, else (a cache they cannot write: another
 * user's, a read-only mount) read-only. Read-only, LMDB goes without its lock file when it
 * cannot open it for writing, so nothing is written at all.
 */
function openIndex(file: string, cacheDir: string): { root: RootDatabase; readOnly: boolean } {
  const options = { path: file, maxDbs: 16, mapSize: 2 ** 40 };
  try {
    return { root: open(options), readOnly: false };
  } catch (err) {
    if (!cannotWrite(err)) throw err;
  }
  if (!existsSync(file)) throw new ReadOnlyCacheError(cacheDir, 'create its index (it has none yet)');
  return { root: open({ ...options, readOnly: true }), readOnly: true };
}

/**
 * The local cache: one LMDB environment (manifests, name index, record sets, locks, file
 * digests) plus a content-addressed blob directory. Safe for many processes at once.
 *
 * A cache this user cannot write opens read-only: everything that only reads works (status,
 * ls, show, verify --keep, a run whose nodes are all cached), bookkeeping that merely speeds
 * later commands up (the name index, file digests) is skipped, and anything that would
 * store a result fails with ReadOnlyCacheError.
 */
export class Store {
  readonly root: RootDatabase;
  readonly manifests: Database<Manifest, string>;
  readonly names: Database<NameRecord, string>;
  readonly locks: Database<LockRecord, string>;
  readonly fileHashes: Database<FileHashRecord, string>;
  readonly blobs: BlobStore;
  readonly records: RecordSets;
  readonly trees: TreeStore;
  readonly tmpDir: string;
  readonly indexFile: string;
  readonly readOnly: boolean;

  /** `rebuildingInto`: the index file being made anew from manifests/ (`cache repair`), in place of index.lmdb, whose absence is then expected. */
  constructor(
    readonly dir: string,
    options: { rebuildingInto?: string } = {},
  ) {
    makeCacheDir(dir);
    this.tmpDir = join(dir, 'tmp');
    // A map far larger than any cache, so that LMDB never has to grow it while other
    // processes write (address space only: the file grows with what is stored).
    this.indexFile = options.rebuildingInto ?? join(dir, 'index.lmdb');
    // Checked before LMDB maps it: a truncated file would be a SIGBUS on first read.
    checkIndexFile(this.indexFile);
    // A deleted or lost index next to the manifest files of its results: opening would make an
    // empty one, every node would read "never run" and be recomputed, and `cache repair` would
    // find that empty index whole. Refused instead, naming the repair that re-indexes them.
    if (options.rebuildingInto === undefined && !existsSync(this.indexFile) && holdsManifestFiles(dir)) {
      throw new IndexDamagedError(this.indexFile, 'the file is missing, while manifests/ still holds the results it indexed');
    }
    try {
      ({ root: this.root, readOnly: this.readOnly } = openIndex(this.indexFile, dir));
      this.manifests = this.table<Manifest, string>(this.jsonTable('manifests'));
      this.names = this.table<NameRecord, string>(this.jsonTable('names'));
      this.locks = this.table<LockRecord, string>(this.jsonTable('locks'));
      this.fileHashes = this.table<FileHashRecord, string>(this.jsonTable('filehashes'));
      this.records = new RecordSets((options) => this.table(options), dir, (name) => this.jsonTable(name), (doing) => this.assertWritable(doing));
    } catch (err) {
      throw err instanceof IndexDamagedError || err instanceof ReadOnlyCacheError ? err : new IndexDamagedError(this.indexFile, `LMDB cannot open it (${(err as Error).message})`);
    }
    this.blobs = new BlobStore(join(dir, 'cas'), this.tmpDir);
    this.trees = new TreeStore(join(dir, 'trees'), this.blobs, this.tmpDir, this.readOnly);
  }

  /** One table of the index; in a read-only index, one it never had reads as empty. */
  table<V, K extends Key>(options: DatabaseOptions & { name: string }): Database<V, K> {
    // lmdb-js returns undefined for a table a read-only environment does not have.
    const found = this.root.openDB<V, K>(options) as Database<V, K> | undefined;
    return found ?? emptyTable<V, K>();
  }

  /** Throws ReadOnlyCacheError, saying what could not be done, when this user cannot write the cache. */
  assertWritable(doing: string): void {
    if (this.readOnly) throw new ReadOnlyCacheError(this.dir, doing);
  }

  /** Options of a JSON table whose unreadable values say which index is damaged. */
  jsonTable(name: string): { name: string; encoder: ReturnType<typeof jsonEncoder> } {
    return { name, encoder: jsonEncoder(this.indexFile, name) };
  }

  async close(): Promise<void> {
    await this.root.close();
  }

  manifest(key: string): Manifest | undefined {
    return this.manifests.get(key);
  }

  /**
   * The manifest another process has just committed: lmdb-js renews this process's read
   * snapshot a macrotask late, so a plain read right after that process said "done" can miss it.
   */
  committedManifest(key: string): Manifest | undefined {
    this.root.resetReadTxn();
    return this.manifests.get(key);
  }

  /** Publishes a finished node. Write-once: a manifest already there (a concurrent writer) wins. */
  async commit(manifest: Manifest): Promise<Manifest> {
    assertManifestNames(manifest);
    this.assertWritable(`store the result of ${manifest.node}`);
    await writingCache(this.dir, `commit the result of ${manifest.node}`, () => this.manifests.ifNoExists(manifest.key, () => this.manifests.put(manifest.key, manifest)));
    const committed = this.manifests.get(manifest.key)!;
    await this.keepManifestFile(committed);
    return committed;
  }

  /**
   * Every manifest is also a file, manifests/<2 hex>/<key>.json: self-checking (its key is the
   * digest of its key material), so `cache repair` can re-index it when index.lmdb is lost.
   */
  manifestFile(key: string): string {
    assertDigest(key, 'node key');
    return join(this.dir, 'manifests', key.slice(0, 2), `${key}.json`);
  }

  async keepManifestFile(manifest: Manifest, options: { overwrite?: boolean } = {}): Promise<void> {
    const file = this.manifestFile(manifest.key);
    if (!options.overwrite && (await stat(file).catch(() => undefined))) return;
    this.assertWritable(`keep the manifest of ${manifest.node}`);
    await writingCache(this.dir, `keep the manifest of ${manifest.node}`, async () => {
      await mkdir(dirname(file), { recursive: true });
      const staging = `${file}.${randomUUID()}`;
      await writeFile(staging, JSON.stringify(manifest));
      await rename(staging, file);
    });
  }

  /** Every table of the index read through once; throws IndexDamagedError naming the first that fails. */
  checkReadable(): number {
    let entries = 0;
    const tables: [string, ReadableTable][] = [
      ['manifests', this.manifests],
      ['names', this.names],
      ['locks', this.locks],
      ['filehashes', this.fileHashes],
      ...this.records.tables(),
    ];
    for (const [name, table] of tables) {
      try {
        for (const entry of table.getRange()) if (entry.value !== undefined) entries++;
      } catch (err) {
        throw err instanceof IndexDamagedError ? err : new IndexDamagedError(this.indexFile, `its ${name} table cannot be read (${(err as Error).message})`);
      }
    }
    return entries;
  }

  /** A forced rerun's result: it takes the key's place (the old one stayed until this succeeded). */
  async replace(manifest: Manifest): Promise<Manifest> {
    assertManifestNames(manifest);
    this.assertWritable(`replace the result of ${manifest.node}`);
    await writingCache(this.dir, `replace the result of ${manifest.node}`, () => this.manifests.put(manifest.key, manifest));
    // The file too: one left behind would bring the replaced result back at the next `cache repair`.
    await this.keepManifestFile(manifest, { overwrite: true });
    return this.manifests.get(manifest.key)!;
  }

  /** Drops a manifest whose artifacts turned out broken, so the node is recomputed. */
  async invalidate(key: string): Promise<void> {
    this.assertWritable(`drop the result ${key.slice(0, 12)}`);
    // The file first: a kill in between leaves an index entry without its file (verify writes
    // it back), never a file that `cache repair` would bring back.
    if (isDigest(key)) await rm(this.manifestFile(key), { force: true });
    await this.manifests.remove(key);
  }

  nameKey(pipeline: string, node: string): string {
    return `${pipeline}\u0000${node}`;
  }

  lastKnown(pipeline: string, node: string): NameRecord | undefined {
    return this.names.get(this.nameKey(pipeline, node));
  }

  async remember(pipeline: string, node: string, record: NameRecord): Promise<void> {
    // Only what `status` says about a miss ("params changed") depends on it: a read-only cache goes without.
    if (this.readOnly) return;
    const k = this.nameKey(pipeline, node);
    if (this.names.get(k)?.key !== record.key) await this.names.put(k, record);
  }

  logPath(node: string, key: string): string {
    const safe = node.replace(/[^A-Za-z0-9_.=,-]+/g, '_').slice(0, 150);
    return join('logs', `${safe}.${key.slice(0, 12)}.log`);
  }

  checkpointDir(key: string): string {
    assertDigest(key, 'node key');
    return join(this.dir, 'checkpoints', key);
  }

  /** Whether a run of this key saved checkpoints that were not dropped (it was interrupted or failed). */
  hasCheckpoints(key: string): boolean {
    const dir = this.checkpointDir(key);
    return existsSync(dir) && readdirSync(dir).some((f) => !f.startsWith('.'));
  }

  /** Kept as [magic][sha256 of the bytes][bytes]: a checkpoint that rotted is never resumed from. */
  async saveCheckpoint(key: string, name: string, data: Uint8Array): Promise<void> {
    this.assertWritable('save a checkpoint');
    const dir = this.checkpointDir(key);
    await mkdir(dir, { recursive: true });
    const staging = join(dir, `.${name}.${randomUUID()}`);
    await writeFile(staging, Buffer.concat([CHECKPOINT_MAGIC, createHash('sha256').update(data).digest(), data]));
    await rename(staging, join(dir, name));
  }

  /** The checkpoint's bytes; undefined when there is none, or when it does not match its checksum (the node starts without it). */
  async restoreCheckpoint(key: string, name: string): Promise<Uint8Array | undefined> {
    let file: Buffer;
    try {
      file = await readFile(join(this.checkpointDir(key), name));
    } catch {
      return undefined;
    }
    const head = CHECKPOINT_MAGIC.length;
    if (file.length < head + 32 || !file.subarray(0, head).equals(CHECKPOINT_MAGIC)) return undefined;
    const data = file.subarray(head + 32);
    return createHash('sha256').update(data).digest().equals(file.subarray(head, head + 32)) ? data : undefined;
  }

  async dropCheckpoints(key: string): Promise<void> {
    this.assertWritable('drop checkpoints');
    await rm(this.checkpointDir(key), { recursive: true, force: true });
  }

  /** A new scratch directory under tmp/ (synchronous: made when a stage first reads ctx.workdir). */
  makeWorkdir(): string {
    this.assertWritable('make a scratch directory to run a node in');
    const dir = join(this.tmpDir, `work-${randomUUID()}`);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new CacheIOError(this.dir, 'make a scratch directory', err);
    }
    return dir;
  }

  /** sha256 of a file, remembered by (path, size, mtime, ctime, inode) so unchanged raw data is not re-read. */
  async hashFile(path: string): Promise<string> {
    const abs = resolve(path);
    const st = await stat(abs);
    const known = this.fileHashes.get(abs);
    if (known && known.size === st.size && known.mtimeMs === st.mtimeMs && known.ctimeMs === st.ctimeMs && known.ino === st.ino) return known.digest;
    const { digest } = await sha256File(abs);
    if (this.readOnly) return digest;
    await this.fileHashes.put(abs, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, digest });
    return digest;
  }

  // Lock changes are asynchronous transactions: each is atomic, and the many of one event
  // turn (a scheduler dispatching nodes) commit together instead of one sync commit apiece.

  /** Takes the node's lock if free, expired, or held by a dead process on this host. */
  tryLock(key: string, node: string, owner: string, ttlMs: number): Promise<boolean> {
    this.assertWritable(`lock ${node} to compute it`);
    return this.root.transaction(() => {
      const current = this.locks.get(key);
      const now = Date.now();
      if (current && current.owner !== owner && current.expires > now && !(current.host === hostname() && !processAlive(current.pid))) return false;
      void this.locks.put(key, { owner, host: hostname(), pid: process.pid, node, expires: now + ttlMs });
      return true;
    });
  }

  renewLock(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.root.transaction(() => {
      const current = this.locks.get(key);
      if (!current || current.owner !== owner) return false;
      void this.locks.put(key, { ...current, expires: Date.now() + ttlMs });
      return true;
    });
  }

  unlock(key: string, owner: string): Promise<void> {
    return this.root.transaction(() => {
      if (this.locks.get(key)?.owner === owner) void this.locks.remove(key);
    });
  }

  lockHolder(key: string): LockRecord | undefined {
    return this.locks.get(key);
  }
}

/** Every name in a manifest that can become a path or an index key: its key and its output digests. */
export function assertManifestNames(manifest: Manifest): void {
  assertDigest(manifest.key, `key of ${manifest.node}`);
  for (const [name, a] of Object.entries(manifest.outputs)) assertDigest(a.digest, `${manifest.node} output ${name}`);
}

