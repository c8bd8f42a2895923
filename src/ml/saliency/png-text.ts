// A PNG tEXt chunk carrying the figure's description (which row is which), so a report that
// only receives the PNG file can caption it. Text is metadata: it renders the same with or
// without fonts installed, which drawing labels into the pixels would not.

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The PNG with a tEXt chunk `keyword` = `text` (Latin-1) inserted before IEND. */
export function withText(png: Uint8Array, keyword: string, text: string): Buffer {
  const iend = png.length - 12;
  if (Buffer.from(png.subarray(iend + 4, iend + 8)).toString('latin1') !== 'IEND') throw new Error('withText: not a PNG ending in IEND');
  const body = Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0]), Buffer.from(text.replace(/[^\x20-\x7e\n]/g, '?'), 'latin1')]);
  const typed = Buffer.concat([Buffer.from('tEXt', 'latin1'), body]);
  const chunk = Buffer.alloc(12 + body.length);
  chunk.writeUInt32BE(body.length, 0);
  typed.copy(chunk, 4);
  chunk.writeUInt32BE(crc32(typed), 8 + body.length);
  return Buffer.concat([png.subarray(0, iend), chunk, png.subarray(iend)]);
}
