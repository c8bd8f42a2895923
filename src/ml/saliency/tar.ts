// A minimal POSIX ustar writer: the per-image PNGs leave a stage as one `file` output (a stage
// declares a fixed set of outputs, so a variable number of images travels as an archive that
// `tar -xf` opens). Fixed mtime, mode and owner keep the bytes a function of the contents.

const BLOCK = 512;

function field(header: Uint8Array, offset: number, length: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > length) throw new Error(`tar: "${text}" does not fit a ${length}-byte field`);
  header.set(bytes, offset);
}

const octal = (n: number, width: number): string => n.toString(8).padStart(width - 1, '0') + '\0';

function header(name: string, size: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  if (Buffer.byteLength(name) > 100) throw new Error(`tar: entry name longer than 100 bytes: ${name}`);
  field(h, 0, 100, name);
  field(h, 100, 8, octal(0o644, 8));
  field(h, 108, 8, octal(0, 8));
  field(h, 116, 8, octal(0, 8));
  field(h, 124, 12, octal(size, 12));
  field(h, 136, 12, octal(0, 12));
  field(h, 148, 8, '        '); // checksum counts as spaces while it is summed
  field(h, 156, 1, '0');
  field(h, 257, 6, 'ustar\0');
  field(h, 263, 2, '00');
  const sum = h.reduce((s, b) => s + b, 0);
  field(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

/** The archive of `entries` (name -> bytes), in the given order. */
export function tarArchive(entries: [string, Uint8Array][]): Buffer {
  const parts: Uint8Array[] = [];
  for (const [name, data] of entries) {
    parts.push(header(name, data.length), data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(2 * BLOCK));
  return Buffer.concat(parts);
}
