import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
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
  let buf: Buffer = Buffer.alloc(0);
  let seen = 0;
  for await (const chunk of createReadStream(path)) {
    buf = buf.length === 0 ? (chunk as Buffer) : Buffer.concat([buf, chunk as Buffer]);
    while (seen < count && buf.length >= 4) {
      const len = buf.readUInt32LE(0);
      if (buf.length < 4 + len) break;
      // A copy: LMDB may keep the value until its batch commits, and chunk memory can be pooled.
      yield Buffer.from(buf.subarray(4, 4 + len));
      buf = buf.subarray(4 + len);
      seen++;
    }
  }
  if (seen < count) throw new Error(`packed record set ends after ${seen} of ${count} records`);
  if (buf.toString('utf8') !== canonicalJSON(meta)) throw new Error('packed record set: meta does not match its manifest');
}
