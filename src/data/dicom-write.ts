// A minimal DICOM Part-10 writer for monochrome images: enough for synthetic mammograms and for
// tests of every decoder path (three uncompressed transfer syntaxes, and an encapsulated one
// that the decoder must refuse). Not a general DICOM toolkit: it writes what it is given.
import { EXPLICIT_VR_BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN } from './dicom-syntax.js';

/** Digital Mammography X-Ray Image Storage - For Presentation. */
export const MAMMOGRAPHY_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.1.2';
const IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.10.1430.1';

export interface DicomImage {
  rows: number;
  columns: number;
  bitsAllocated: 8 | 16;
  bitsStored?: number;
  pixelRepresentation?: 0 | 1;
  photometric?: 'MONOCHROME1' | 'MONOCHROME2';
  /** Number of Frames; the pixels then hold that many frames, one after another. */
  frames?: number;
  /** Stored values, row-major; Uint8Array for 8-bit, Uint16Array/Int16Array for 16-bit. */
  pixels: Uint8Array | Uint16Array | Int16Array;
  windowCenter?: number;
  windowWidth?: number;
  rescaleSlope?: number;
  rescaleIntercept?: number;
  patientId?: string;
  laterality?: 'L' | 'R';
  viewPosition?: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  seriesDescription?: string;
}

export interface WriteOptions {
  /** Defaults to Explicit VR Little Endian. Any other UID writes the pixels encapsulated, verbatim. */
  transferSyntax?: string;
}

type Value = string | number[] | Uint8Array;

interface Element {
  tag: number;
  vr: string;
  value: Value;
  /** US/UL/OW values are numbers of this byte width. */
}

const LONG_VRS = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN']);

class ByteWriter {
  private chunks: Uint8Array[] = [];
  length = 0;

  constructor(private readonly littleEndian: boolean) {}

  bytes(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }

  uint16(v: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, this.littleEndian);
    this.bytes(b);
  }

  uint32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, this.littleEndian);
    this.bytes(b);
  }

  ascii(s: string): void {
    this.bytes(new TextEncoder().encode(s));
  }

  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function encodeValue(el: Element, littleEndian: boolean): Uint8Array {
  const { vr, value } = el;
  if (typeof value === 'string') {
    const pad = vr === 'UI' ? '\0' : ' ';
    const text = value.length % 2 === 1 ? value + pad : value;
    return new TextEncoder().encode(text);
  }
  if (value instanceof Uint8Array) {
    if (value.length % 2 === 0) return value;
    const padded = new Uint8Array(value.length + 1);
    padded.set(value);
    return padded;
  }
  const width = vr === 'UL' ? 4 : 2;
  const out = new Uint8Array(value.length * width);
  const view = new DataView(out.buffer);
  value.forEach((v, i) => (width === 4 ? view.setUint32(i * 4, v, littleEndian) : view.setUint16(i * 2, v, littleEndian)));
  return out;
}

function writeElement(w: ByteWriter, el: Element, explicit: boolean, littleEndian: boolean): void {
  const data = encodeValue(el, littleEndian);
  w.uint16(el.tag >>> 16);
  w.uint16(el.tag & 0xffff);
  if (!explicit) {
    w.uint32(data.length);
  } else if (LONG_VRS.has(el.vr)) {
    w.ascii(el.vr);
    w.uint16(0);
    w.uint32(data.length);
  } else {
    w.ascii(el.vr);
    w.uint16(data.length);
  }
  w.bytes(data);
}

function pixelBytes(image: DicomImage, littleEndian: boolean): Uint8Array {
  const n = image.rows * image.columns * (image.frames ?? 1);
  if (image.pixels.length !== n) throw new Error(`writeDicom: ${image.pixels.length} pixels for ${image.frames ?? 1} frames of ${image.columns}x${image.rows}`);
  if (image.bitsAllocated === 8) return new Uint8Array(image.pixels);
  const out = new Uint8Array(n * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < n; i++) view.setUint16(2 * i, image.pixels[i] & 0xffff, littleEndian);
  return out;
}

function datasetElements(image: DicomImage): Element[] {
  const els: Element[] = [
    { tag: 0x00080016, vr: 'UI', value: MAMMOGRAPHY_SOP_CLASS },
    { tag: 0x00080018, vr: 'UI', value: image.sopInstanceUid },
    { tag: 0x00080060, vr: 'CS', value: 'MG' },
    { tag: 0x00100020, vr: 'LO', value: image.patientId ?? '' },
    { tag: 0x0020000d, vr: 'UI', value: image.studyInstanceUid },
    { tag: 0x0020000e, vr: 'UI', value: image.seriesInstanceUid },
    { tag: 0x00280002, vr: 'US', value: [1] },
    { tag: 0x00280004, vr: 'CS', value: image.photometric ?? 'MONOCHROME2' },
    { tag: 0x00280010, vr: 'US', value: [image.rows] },
    { tag: 0x00280011, vr: 'US', value: [image.columns] },
    { tag: 0x00280100, vr: 'US', value: [image.bitsAllocated] },
    { tag: 0x00280101, vr: 'US', value: [image.bitsStored ?? image.bitsAllocated] },
    { tag: 0x00280102, vr: 'US', value: [(image.bitsStored ?? image.bitsAllocated) - 1] },
    { tag: 0x00280103, vr: 'US', value: [image.pixelRepresentation ?? 0] },
  ];
  if (image.frames !== undefined) els.push({ tag: 0x00280008, vr: 'IS', value: String(image.frames) });
  if (image.seriesDescription !== undefined) els.push({ tag: 0x0008103e, vr: 'LO', value: image.seriesDescription });
  if (image.viewPosition !== undefined) els.push({ tag: 0x00185101, vr: 'CS', value: image.viewPosition });
  if (image.laterality !== undefined) els.push({ tag: 0x00200062, vr: 'CS', value: image.laterality });
  if (image.windowCenter !== undefined && image.windowWidth !== undefined) {
    els.push({ tag: 0x00281050, vr: 'DS', value: formatDS(image.windowCenter) });
    els.push({ tag: 0x00281051, vr: 'DS', value: formatDS(image.windowWidth) });
  }
  if (image.rescaleIntercept !== undefined || image.rescaleSlope !== undefined) {
    els.push({ tag: 0x00281052, vr: 'DS', value: formatDS(image.rescaleIntercept ?? 0) });
    els.push({ tag: 0x00281053, vr: 'DS', value: formatDS(image.rescaleSlope ?? 1) });
  }
  return els.sort((a, b) => a.tag - b.tag);
}

/** DS is at most 16 characters. */
function formatDS(v: number): string {
  const s = String(v);
  return s.length <= 16 ? s : v.toPrecision(10);
}

export function writeDicom(image: DicomImage, options: WriteOptions = {}): Uint8Array {
  const syntax = options.transferSyntax ?? EXPLICIT_VR_LITTLE_ENDIAN;
  const encapsulated = ![IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN].includes(syntax);
  const explicit = syntax !== IMPLICIT_VR_LITTLE_ENDIAN;
  const littleEndian = syntax !== EXPLICIT_VR_BIG_ENDIAN;

  // File meta information: always Explicit VR Little Endian, preceded by its group length.
  const meta = new ByteWriter(true);
  const metaEls: Element[] = [
    { tag: 0x00020001, vr: 'OB', value: new Uint8Array([0, 1]) },
    { tag: 0x00020002, vr: 'UI', value: MAMMOGRAPHY_SOP_CLASS },
    { tag: 0x00020003, vr: 'UI', value: image.sopInstanceUid },
    { tag: 0x00020010, vr: 'UI', value: syntax },
    { tag: 0x00020012, vr: 'UI', value: IMPLEMENTATION_CLASS_UID },
  ];
  for (const el of metaEls) writeElement(meta, el, true, true);
  const metaBody = meta.concat();

  const out = new ByteWriter(true);
  out.bytes(new Uint8Array(128));
  out.ascii('DICM');
  writeElement(out, { tag: 0x00020000, vr: 'UL', value: [metaBody.length] }, true, true);
  out.bytes(metaBody);

  const ds = new ByteWriter(littleEndian);
  for (const el of datasetElements(image)) writeElement(ds, el, explicit, littleEndian);
  const pixels = pixelBytes(image, littleEndian);
  if (encapsulated) {
    // Undefined length, an empty basic offset table item, one fragment, sequence delimiter.
    ds.uint16(0x7fe0);
    ds.uint16(0x0010);
    ds.ascii('OB');
    ds.uint16(0);
    ds.uint32(0xffffffff);
    for (const fragment of [new Uint8Array(0), pixels]) {
      ds.uint16(0xfffe);
      ds.uint16(0xe000);
      ds.uint32(fragment.length);
      ds.bytes(fragment);
    }
    ds.uint16(0xfffe);
    ds.uint16(0xe0dd);
    ds.uint32(0);
  } else {
    writeElement(ds, { tag: 0x7fe00010, vr: image.bitsAllocated === 8 ? 'OB' : 'OW', value: pixels }, explicit, littleEndian);
  }
  out.bytes(ds.concat());
  return out.concat();
}

/** A syntactically valid UID under this writer's root, unique per (seed, index). */
export function syntheticUid(...parts: number[]): string {
  return `1.2.826.0.1.3680043.10.1430.${parts.map((p) => Math.abs(Math.trunc(p))).join('.')}`;
}
