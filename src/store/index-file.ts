import { closeSync, fstatSync, openSync, readSync, truncateSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { shellCommand } from '../util/shell.js';

/**
 * The checks LMDB does not make before it maps index.lmdb: a file cut short (a full disk, a
 * copy interrupted) makes it touch pages past the end, which is SIGBUS, a crash that prints
 * nothing. Both meta pages are read here; the newer one says how many pages the file must hold.
 */
const MDB_MAGIC = 0xbeefc0de;
const P_META = 0x08;

export class IndexDamagedError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`cache index ${file} is damaged: ${problem}. Run \`${shellCommand('pipeline', 'cache', 'repair', '--cache', dirname(file))}\` to rebuild it from the results that still verify (it keeps the damaged file beside the new one)`);
    this.name = 'IndexDamagedError';
  }
}

/** What a read-through check needs of an LMDB table. */
export interface ReadableTable {
  getRange(): Iterable<{ value: unknown }>;
}

interface Meta {
  txnid: bigint;
  lastPage: bigint;
}

/** One meta page: [page header (16 or 24 bytes, by LMDB version)] magic, version, address, mapsize, 2 dbs, last page, txnid. */
function readMeta(page: Buffer): Meta | string {
  for (const header of [24, 16]) {
    if (page.length < header + 136 || page.readUInt32LE(header) !== MDB_MAGIC) continue;
    if ((page.readUInt16LE(header - 6) & P_META) === 0) return 'a meta page lacks its flag';
    return { lastPage: page.readBigUInt64LE(header + 120), txnid: page.readBigUInt64LE(header + 128) };
  }
  return 'a meta page lacks the LMDB magic number';
}

/** The page size LMDB recorded (in the free-list db's pad field of meta page 0). */
function pageSizeOf(first: Buffer): number | undefined {
  for (const header of [24, 16]) {
    if (first.length >= header + 28 && first.readUInt32LE(header) === MDB_MAGIC) return first.readUInt32LE(header + 24);
  }
  return undefined;
}

/** The size index.lmdb must have by its newer meta page; undefined for a missing or empty file. Throws IndexDamagedError for a bad header. */
function inspect(file: string): { size: number; needed: bigint } | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new IndexDamagedError(file, `cannot be read (${(err as NodeJS.ErrnoException).code})`);
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return undefined;
    const first = Buffer.alloc(Math.min(size, 4096));
    readSync(fd, first, 0, first.length, 0);
    const pageSize = pageSizeOf(first);
    if (pageSize === undefined || pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) throw new IndexDamagedError(file, 'its first page is not an LMDB header');
    if (size < 2 * pageSize) throw new IndexDamagedError(file, `${size} bytes, shorter than its two header pages`);
    const metas: Meta[] = [];
    for (const n of [0, 1]) {
      const page = Buffer.alloc(pageSize);
      readSync(fd, page, 0, pageSize, n * pageSize);
      const meta = readMeta(page);
      if (typeof meta === 'string') throw new IndexDamagedError(file, `${meta} (page ${n})`);
      metas.push(meta);
    }
    const current = metas[0]!.txnid >= metas[1]!.txnid ? metas[0]! : metas[1]!;
    // The size after the meta was read: another process may have committed in between, and
    // LMDB writes a transaction's pages before the meta that points at them, so only a size
    // taken later is comparable (taken before, a live cache read as "truncated").
    return { size: fstatSync(fd).size, needed: (current.lastPage + 1n) * BigInt(pageSize) };
  } finally {
    closeSync(fd);
  }
}

/** Throws IndexDamagedError when index.lmdb cannot be opened safely; a missing or empty file is a new index. */
export function checkIndexFile(file: string): void {
  const found = inspect(file);
  if (found && BigInt(found.size) < found.needed) throw new IndexDamagedError(file, `truncated: ${found.size} bytes, but its pages reach ${found.needed}`);
}

/**
 * Extends a cut-short index with zeros to the size its header claims, so that LMDB can open it
 * to salvage from (what was lost reads as zeros and fails its checks, never a SIGBUS); false if
 * its header is unusable.
 */
export function padIndexFile(file: string): boolean {
  try {
    const found = inspect(file);
    if (!found) return false;
    if (BigInt(found.size) < found.needed) truncateSync(file, Number(found.needed));
    return true;
  } catch {
    return false;
  }
}

/** First byte of a checksummed JSON value; JSON text never starts with it. */
const SUMMED = 0x01;
const SUM_BYTES = 4;

/**
 * What lmdb-js does for `encoding: 'json'`, with a checksum: each value is stored as
 * [0x01][CRC-32 of its text][text], so a flipped byte in a value (a manifest's numbers, a
 * digest) is refused naming the index instead of read as a different result. CRC-32 guards
 * against rot and torn pages, not a hostile writer (who could rewrite any sum), at a fifth of
 * a sha256's cost per read. Values written before checksums (plain JSON text) still read, unchecked.
 */
export function jsonEncoder(file: string, db: string): { encode(value: unknown): Buffer; decode(bytes: Uint8Array, size?: unknown): unknown } {
  const damaged = (problem: string) => new IndexDamagedError(file, `an entry of its ${db} table ${problem}`);
  return {
    encode(value) {
      const text = Buffer.from(JSON.stringify(value), 'utf8');
      const out = Buffer.allocUnsafe(1 + SUM_BYTES + text.length);
      out[0] = SUMMED;
      out.writeUInt32LE(crc32(text), 1);
      text.copy(out, 1 + SUM_BYTES);
      return out;
    },
    decode(bytes, size) {
      const length = typeof size === 'number' ? size : bytes.length;
      // A size LMDB read from a damaged page can exceed what it handed over.
      if (length > bytes.length) throw damaged('claims more bytes than it holds');
      const all = Buffer.from(bytes.buffer, bytes.byteOffset, length);
      let text = all;
      if (all[0] === SUMMED) {
        text = all.subarray(1 + SUM_BYTES);
        if (all.length < 1 + SUM_BYTES || crc32(text) !== all.readUInt32LE(1)) throw damaged('does not match its checksum');
      }
      try {
        return JSON.parse(text.toString('utf8'));
      } catch {
        throw damaged('is not valid JSON');
      }
    },
  };
}
