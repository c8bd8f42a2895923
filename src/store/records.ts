import { createHash, randomUUID } from 'node:crypto';
import type { Database, DatabaseOptions, Key } from 'lmdb';
import { pack, unpack } from 'msgpackr';
import type { DataRecord, JSONObject, RecordReader, RecordWriter } from '../contract.js';
import { canonicalJSON } from '../util/hash.js';
import { CorruptArtifactError } from './artifacts.js';
import { CacheIOError, writingCache } from './errors.js';
import type { ReadableTable } from './index-file.js';

interface SetInfo {
  digest: string;
  count: number;
  meta: JSONObject;
}

type RecordKey = [string, number];

const SUM_BYTES = 32;

/**
 * Record sets in LMDB: one value per record under [set id, index]. A set is written under a
 * fresh id and only becomes reachable through the manifest that names it, so a killed writer
 * leaves unreachable records for `cache gc`, never a half set that reads as whole.
 *
 * Each set also keeps the sha256 of every record (one value, 32 bytes a record), and a reader
 * checks a record against it before handing it to a stage: a record that rotted fails the
 * consumer instead of becoming part of a result cached under a key that says otherwise.
 */
const recordSum = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest();
export class RecordSets {
  private readonly records: Database<Buffer, RecordKey>;
  private readonly sets: Database<SetInfo, string>;
  private readonly byDigest: Database<string, string>;
  private readonly sums: Database<Buffer, string>;

  constructor(
    table: <V, K extends Key>(options: DatabaseOptions & { name: string }) => Database<V, K>,
    private readonly cacheDir: string,
    jsonTable: (name: string) => { name: string; encoder: { encode(value: unknown): Buffer; decode(bytes: Uint8Array, size?: unknown): unknown } },
    /** Throws when the cache may not be written (a read-only cache). */
    private readonly assertWritable: (doing: string) => void,
  ) {
    this.records = table<Buffer, RecordKey>({ name: 'records', encoding: 'binary' });
    this.sets = table<SetInfo, string>(jsonTable('recordsets'));
    this.byDigest = table<string, string>({ name: 'recordsets-by-digest', encoding: 'string' });
    this.sums = table<Buffer, string>({ name: 'record-sums', encoding: 'binary' });
  }

  /** Streams records into a new set; returns where it lives and its content digest. */
  async write(meta: () => JSONObject, fill: (w: RecordWriter) => Promise<void>): Promise<{ set: string; digest: string; count: number; meta: JSONObject }> {
    return this.store(meta, async (put) => {
      let count = 0;
      const writer: RecordWriter = {
        get count() {
          return count;
        },
        async append(record: DataRecord) {
          count++;
          await put(pack({ d: record.data, m: record.meta }));
        },
      };
      await fill(writer);
    });
  }

  /**
   * Rebuilds a set from records exactly as rawRecords() gave them (another machine's cache);
   * the result must hash to `expected`, else nothing is kept and CorruptArtifactError is thrown.
   */
  async importRaw(records: AsyncIterable<Buffer>, meta: JSONObject, expected: string): Promise<{ set: string; count: number }> {
    const out = await this.store(
      () => meta,
      async (put) => {
        for await (const bytes of records) await put(bytes);
      },
      expected,
    );
    return { set: out.set, count: out.count };
  }

  /** Record bytes as stored, in order: what travels when a set is shared. */
  *rawRecords(set: string): Generator<Buffer> {
    const info = this.sets.get(set);
    if (!info) throw new CorruptArtifactError(`record set ${set} missing`, set, 'none');
    for (let i = 0; i < info.count; i++) {
      const bytes = this.records.get([set, i]);
      if (!bytes) throw new CorruptArtifactError(`record set ${set} (record ${i} missing)`, info.digest, 'none');
      yield bytes;
    }
  }

  /** A stored set with this content digest whose records still hash to it, if any. */
  findByDigest(digest: string): string | undefined {
    const set = this.byDigest.get(digest);
    return set && this.sets.get(set) && this.verify(set).ok ? set : undefined;
  }

  private async store(
    meta: () => JSONObject,
    fill: (put: (bytes: Buffer) => Promise<void>) => Promise<void>,
    expected?: string,
  ): Promise<{ set: string; digest: string; count: number; meta: JSONObject }> {
    this.assertWritable('store a record set');
    const set = randomUUID();
    const hash = createHash('sha256');
    const sums: Buffer[] = [];
    let count = 0;
    let pending: Promise<unknown> = Promise.resolve();
    // Every put is watched: an unwatched one that fails (a full disk) would kill the process
    // with an unhandled rejection and no word about the cache.
    let failure: unknown;
    const settle = async () => {
      await pending;
      if (failure !== undefined) {
        await this.drop(set).catch(() => undefined);
        throw new CacheIOError(this.cacheDir, `write a record set (${count} records so far)`, failure);
      }
    };
    const records = this.records;
    await fill(async (bytes) => {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(bytes.length);
      hash.update(len).update(bytes);
      sums.push(recordSum(bytes));
      pending = records.put([set, count], bytes).catch((err: unknown) => void (failure ??= err));
      count++;
      // Bound memory: let LMDB commit its batch every so often instead of queueing a data set.
      if (count % 256 === 0) await settle();
    });
    await settle();
    // Every record must be on disk before the set can be named: a missing one would read as
    // corruption later, on another node. lmdb-js reads through a snapshot it renews only on
    // its next macrotask, so right after a commit a count can miss the last records (seen as
    // "600 written, 599 stored" with several processes writing): count on a fresh snapshot.
    const stored = await this.countStored(set, count);
    if (stored !== count) {
      const missing: number[] = [];
      for (let i = 0; i < count && missing.length < 5; i++) if (this.records.getBinary([set, i]) === undefined) missing.push(i);
      await this.drop(set);
      throw new Error(`record set ${set}: ${count} records written but ${stored} stored (missing e.g. ${missing.join(', ')}); nothing was kept, the node can be rerun`);
    }
    const setMeta = meta();
    hash.update(canonicalJSON(setMeta));
    const digest = hash.digest('hex');
    if (expected !== undefined && digest !== expected) {
      await this.drop(set, count);
      throw new CorruptArtifactError('imported record set', expected, digest);
    }
    const existing = this.byDigest.get(digest);
    if (existing && this.sets.get(existing)) {
      // Adopt an identical set only while it is intact: a recomputed producer must replace a
      // set that rotted, not take it back by its digest.
      if (this.verify(existing).ok) {
        await this.drop(set, count);
        return { set: existing, digest, count, meta: setMeta };
      }
      await this.drop(existing);
    }
    await writingCache(this.cacheDir, 'name a record set', async () => {
      await this.sums.put(set, Buffer.concat(sums));
      await this.sets.put(set, { digest, count, meta: setMeta });
      await this.byDigest.put(digest, set);
    });
    return { set, digest, count, meta: setMeta };
  }

  private async countStored(set: string, count: number): Promise<number> {
    let stored = 0;
    for (let attempt = 0; attempt < 3; attempt++) {
      this.records.resetReadTxn();
      stored = this.records.getKeysCount({ start: [set, 0], end: [set, count] });
      if (stored === count) break;
      await new Promise((r) => setTimeout(r, 10 * (attempt + 1)));
    }
    return stored;
  }

  reader(set: string, what: string): RecordReader {
    const info = this.sets.get(set);
    if (!info) throw new CorruptArtifactError(`${what} (record set ${set} missing)`, set, 'none');
    const records = this.records;
    const sums = this.sums.getBinary(set);
    if (!sums || sums.length !== info.count * SUM_BYTES) {
      // A set from before per-record sums (or whose sums are gone): check it whole, once.
      const whole = this.verify(set);
      if (!whole.ok) throw new CorruptArtifactError(`${what} (record set ${whole.actual.startsWith('record') ? whole.actual : 'content'})`, whole.expected, whole.actual);
    }
    const checked = sums && sums.length === info.count * SUM_BYTES ? new Uint8Array(info.count) : undefined;
    const get = (index: number): DataRecord => {
      if (!Number.isInteger(index) || index < 0 || index >= info.count) throw new RangeError(`${what}: record ${index} out of range 0..${info.count - 1}`);
      const bytes = records.get([set, index]);
      if (!bytes) throw new CorruptArtifactError(`${what} (record ${index} missing)`, info.digest, 'none');
      // Once per record and reader: an epoch loop re-reads the same bytes, hashing them once is enough.
      if (sums && checked && checked[index] === 0) {
        const actual = recordSum(bytes);
        const expected = sums.subarray(index * SUM_BYTES, (index + 1) * SUM_BYTES);
        if (!actual.equals(expected)) throw new CorruptArtifactError(`${what} (record ${index} does not match its checksum)`, expected.toString('hex'), actual.toString('hex'));
        checked[index] = 1;
      }
      const { d, m } = unpack(bytes) as { d: Uint8Array; m: JSONObject };
      return { data: d, meta: m };
    };
    return {
      count: info.count,
      meta: info.meta,
      get,
      *iterate(start = 0, end = info.count) {
        for (let i = start; i < Math.min(end, info.count); i++) yield get(i);
      },
    };
  }

  /** Whether every read of this set is checked record by record (sets written since checksums). */
  hasRecordSums(set: string): boolean {
    const info = this.sets.get(set);
    const sums = this.sums.getBinary(set);
    return info !== undefined && sums !== undefined && sums.length === info.count * SUM_BYTES;
  }

  /** The tables behind record sets, for a read-through check of the index. */
  tables(): [string, ReadableTable][] {
    return [
      ['records', this.records],
      ['recordsets', this.sets],
      ['recordsets-by-digest', this.byDigest],
      ['record-sums', this.sums],
    ];
  }

  hasSet(set: string): boolean {
    return this.sets.get(set) !== undefined;
  }

  /** Recomputes a set's digest from its records (cache verify). */
  verify(set: string): { ok: boolean; expected: string; actual: string } {
    const info = this.sets.get(set);
    if (!info) return { ok: false, expected: 'set', actual: 'missing' };
    const hash = createHash('sha256');
    const sums = this.sums.getBinary(set);
    const withSums = sums !== undefined && sums.length === info.count * SUM_BYTES;
    let badSum: number | undefined;
    for (let i = 0; i < info.count; i++) {
      const bytes = this.records.get([set, i]);
      if (!bytes) return { ok: false, expected: info.digest, actual: `record ${i} missing` };
      const len = Buffer.alloc(4);
      len.writeUInt32LE(bytes.length);
      hash.update(len).update(bytes);
      if (withSums && badSum === undefined && !recordSum(bytes).equals(sums.subarray(i * SUM_BYTES, (i + 1) * SUM_BYTES))) badSum = i;
    }
    hash.update(canonicalJSON(info.meta));
    const actual = hash.digest('hex');
    if (actual !== info.digest) return { ok: false, expected: info.digest, actual };
    // Intact records under a damaged checksum would fail every reader while verify said ok.
    if (badSum !== undefined) return { ok: false, expected: info.digest, actual: `record ${badSum} checksum damaged` };
    return { ok: true, expected: info.digest, actual };
  }

  /** Every stored set id, including ones no manifest names (left by a killed writer). */
  setIds(): string[] {
    const ids = new Set<string>();
    for (const key of this.records.getKeys()) ids.add((key as RecordKey)[0]);
    for (const key of this.sets.getKeys()) ids.add(key);
    for (const key of this.sums.getKeys()) ids.add(key);
    return [...ids];
  }

  async drop(set: string, count?: number): Promise<void> {
    this.assertWritable('drop a record set');
    const n = count ?? this.sets.get(set)?.count;
    if (n === undefined) {
      for (const key of this.records.getKeys({ start: [set, 0], end: [set, Number.MAX_SAFE_INTEGER] })) await this.records.remove(key);
    } else for (let i = 0; i < n; i++) await this.records.remove([set, i]);
    const info = this.sets.get(set);
    if (info && this.byDigest.get(info.digest) === set) await this.byDigest.remove(info.digest);
    await this.sets.remove(set);
    await this.sums.remove(set);
  }
}
