import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import type { JSONObject } from '../contract.js';
import type { RecordSets } from '../store/records.js';
import { canonicalJSON } from '../util/hash.js';

/*
 * A record set travels as one blob: every record as (u32 LE length, msgpack bytes), then the
 * set's canonical JSON meta. No header: those are exactly the bytes RecordSets hashes, so the
 * blob's sha256 IS the set's content digest and it lives under cas/<digest> like any file
 * (bazel-remote rejects a cas/ upload whose bytes do not hash to its name). Count and meta,
 * needed to read it back, are in the manifest.
 */

export async function packRecordSet(records: RecordSets, set: string, meta: JSONObject, dest: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  const out = createWriteStream(dest);
  let size = 0;
  const write = async (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  };
  try {
    for (const bytes of records.rawRecords(set)) {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(bytes.length);
      await write(len);
      await write(bytes);
    }
    await write(Buffer.from(canonicalJSON(meta)));
  } finally {
    out.end();
    await once(out, 'close');
  }
  return { digest: hash.digest('hex'), size };
}

/** Records of a packed set, streamed; throws if the file does not hold `count` records then `meta`. */
export async function* unpackRecordSet(path: string, count: number, meta: JSONObject): AsyncGenerator<Buffer> {
  const { size } = await stat(path);
  yield* splitRecords(createReadStream(path) as AsyncIterable<Buffer>, count, meta, size);
}

/**
 * The records of a packed set from its bytes in chunks of any size. Each record is copied once,
 * into a buffer of its own length (LMDB may keep the value until its batch commits, and chunk
 * memory can be pooled): linear in the set's size however large a record is or small a chunk.
 */
export async function* splitRecords(chunks: AsyncIterable<Buffer>, count: number, meta: JSONObject, totalBytes: number): AsyncGenerator<Buffer> {
  const expectedMeta = Buffer.from(canonicalJSON(meta));
  const header = Buffer.alloc(4);
  let headerFill = 0;
  let record: Buffer | undefined;
  let recordFill = 0;
  let consumed = 0;
  let seen = 0;
  const tail: Buffer[] = [];
  let tailBytes = 0;
  for await (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.length) {
      if (seen === count) {
        tailBytes += chunk.length - offset;
        if (tailBytes > expectedMeta.length) throw new Error('packed record set: meta does not match its manifest');
        tail.push(chunk.subarray(offset));
        break;
      }
      if (!record) {
        const n = chunk.copy(header, headerFill, offset, Math.min(chunk.length, offset + 4 - headerFill));
        headerFill += n;
        offset += n;
        consumed += n;
        if (headerFill < 4) continue;
        headerFill = 0;
        const length = header.readUInt32LE(0);
        // A hostile length must not allocate gigabytes the file does not hold.
        if (consumed + length > totalBytes) throw new Error(`packed record set ends after ${seen} of ${count} records (record ${seen} claims ${length} bytes, past the end of the set)`);
        record = Buffer.allocUnsafe(length);
        recordFill = 0;
      } else {
        const n = chunk.copy(record, recordFill, offset, Math.min(chunk.length, offset + record.length - recordFill));
        recordFill += n;
        offset += n;
        consumed += n;
      }
      if (record && recordFill === record.length) {
        yield record;
        record = undefined;
        seen++;
      }
    }
  }
  if (seen < count) throw new Error(`packed record set ends after ${seen} of ${count} records`);
  if (!Buffer.concat(tail).equals(expectedMeta)) throw new Error('packed record set: meta does not match its manifest');
}
