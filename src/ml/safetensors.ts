// The safetensors format (https://github.com/huggingface/safetensors), read and written
// byte-for-byte as the reference Rust implementation does, over plain typed arrays:
//
//   [u64 LE: N] [N bytes: JSON header, padded with spaces to a multiple of 8] [tensor data]
//
// Header: {"__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets": [b, e]}}
// with offsets relative to the data section, contiguous, no holes, ending at end of file.
// The writer orders tensors as Rust does (dtype alignment descending, then name) and puts
// `__metadata__` first with sorted keys, so the same tensors always give the same bytes.

import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';

/** All dtypes of the reference implementation, in its (alignment) order. */
export const DTYPES = [
  'BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16',
  'I32', 'U32', 'F32', 'F64', 'I64', 'U64',
] as const;
export type Dtype = (typeof DTYPES)[number];

const DTYPE_SIZE: Record<Dtype, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};

/** Storage array of each dtype. F16/BF16/F8 hold raw bit patterns; use `toFloat32` to decode. */
export interface DtypeStorage {
  BOOL: Uint8Array; U8: Uint8Array; I8: Int8Array; F8_E5M2: Uint8Array; F8_E4M3: Uint8Array;
  I16: Int16Array; U16: Uint16Array; F16: Uint16Array; BF16: Uint16Array;
  I32: Int32Array; U32: Uint32Array; F32: Float32Array; F64: Float64Array;
  I64: BigInt64Array; U64: BigUint64Array;
}
export type TensorData = DtypeStorage[Dtype];

export interface Tensor<D extends Dtype = Dtype> {
  dtype: D;
  shape: number[];
  data: DtypeStorage[D];
}

export interface TensorInfo {
  dtype: Dtype;
  shape: number[];
  /** Byte range inside the data section (after the header). */
  dataOffsets: [number, number];
}

export interface Header {
  metadata: Record<string, string>;
  /** In data (offset) order. */
  tensors: Map<string, TensorInfo>;
  /** Total bytes before the data section: 8 + header length. */
  dataStart: number;
  /** Byte length of the data section the header declares. */
  dataLength: number;
}

const MAX_HEADER_SIZE = 100_000_000;

export class SafetensorsError extends Error {
  constructor(
    readonly source: string,
    detail: string,
    readonly tensor?: string,
  ) {
    super(`${source}: ${tensor === undefined ? '' : `tensor '${tensor}': `}${detail}`);
    this.name = 'SafetensorsError';
  }
}

function assertLittleEndian(): void {
  // Typed arrays use the host's byte order; safetensors is little-endian.
  if (endianness() !== 'LE') throw new Error('safetensors: big-endian hosts are not supported');
}

function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

export function dtypeSize(dtype: Dtype): number {
  return DTYPE_SIZE[dtype];
}

export function numElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function storageFor(dtype: Dtype, buf: ArrayBuffer, byteOffset: number, length: number): TensorData {
  switch (dtype) {
    case 'BOOL': case 'U8': case 'F8_E5M2': case 'F8_E4M3': return new Uint8Array(buf, byteOffset, length);
    case 'I8': return new Int8Array(buf, byteOffset, length);
    case 'I16': return new Int16Array(buf, byteOffset, length);
    case 'U16': case 'F16': case 'BF16': return new Uint16Array(buf, byteOffset, length);
    case 'I32': return new Int32Array(buf, byteOffset, length);
    case 'U32': return new Uint32Array(buf, byteOffset, length);
    case 'F32': return new Float32Array(buf, byteOffset, length);
    case 'F64': return new Float64Array(buf, byteOffset, length);
    case 'I64': return new BigInt64Array(buf, byteOffset, length);
    case 'U64': return new BigUint64Array(buf, byteOffset, length);
  }
}

const STORAGE_CTOR: Record<Dtype, string> = {
  BOOL: 'Uint8Array', U8: 'Uint8Array', I8: 'Int8Array', F8_E5M2: 'Uint8Array', F8_E4M3: 'Uint8Array',
  I16: 'Int16Array', U16: 'Uint16Array', F16: 'Uint16Array', BF16: 'Uint16Array',
  I32: 'Int32Array', U32: 'Uint32Array', F32: 'Float32Array', F64: 'Float64Array',
  I64: 'BigInt64Array', U64: 'BigUint64Array',
};

/** Copies `bytes` into a fresh, aligned array of the dtype's storage type. */
function typedFromBytes(dtype: Dtype, bytes: Uint8Array): TensorData {
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return storageFor(dtype, copy, 0, bytes.byteLength / DTYPE_SIZE[dtype]);
}

// ---------------------------------------------------------------------------------------
// Conversions

const F32_SCRATCH = new Float32Array(1);
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer);

export function f16BitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** float -> IEEE half bits, round to nearest even (as numpy / torch `.half()`). */
export function floatToF16Bits(value: number): number {
  F32_SCRATCH[0] = value;
  const x = U32_SCRATCH[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflows to signed zero
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, up to infinity: exactly IEEE rounding.
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

export function bf16BitsToFloat(b: number): number {
  U32_SCRATCH[0] = b << 16;
  return F32_SCRATCH[0];
}

/** float -> bfloat16 bits, round to nearest even (as torch `.bfloat16()`); NaN stays NaN. */
export function floatToBF16Bits(value: number): number {
  F32_SCRATCH[0] = value;
  const x = U32_SCRATCH[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

function f8e4m3BitsToFloat(b: number): number {
  // E4M3 "fn" (as torch.float8_e4m3fn): no infinities, S.1111.111 is NaN.
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >> 3) & 0xf;
  const frac = b & 0x7;
  if (exp === 0xf && frac === 0x7) return NaN;
  if (exp === 0) return sign * frac * 2 ** -9;
  return sign * (1 + frac / 8) * 2 ** (exp - 7);
}

function f8e5m2BitsToFloat(b: number): number {
  return f16BitsToFloat(b << 8);
}

/** Values of any tensor as float32 (F16/BF16/F8 decoded, wider types rounded). */
export function toFloat32(t: Tensor): Float32Array {
  const { dtype, data } = t;
  if (dtype === 'F32') return data as Float32Array;
  const n = data.length;
  const out = new Float32Array(n);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) out[i] = Number(data[i]);
    return out;
  }
  const src = data as Exclude<TensorData, BigInt64Array | BigUint64Array>;
  const decode =
    dtype === 'F16' ? f16BitsToFloat
    : dtype === 'BF16' ? bf16BitsToFloat
    : dtype === 'F8_E4M3' ? f8e4m3BitsToFloat
    : dtype === 'F8_E5M2' ? f8e5m2BitsToFloat
    : null;
  if (decode) for (let i = 0; i < n; i++) out[i] = decode(src[i]);
  else out.set(src);
  return out;
}

/** A float32 array stored as F32, F16 or BF16 (rounded to nearest even). */
export function fromFloat32(values: Float32Array, shape: number[], dtype: 'F32' | 'F16' | 'BF16' = 'F32'): Tensor {
  if (dtype === 'F32') return { dtype, shape, data: values };
  const enc = dtype === 'F16' ? floatToF16Bits : floatToBF16Bits;
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) bits[i] = enc(values[i]);
  return { dtype, shape, data: bits };
}

// ---------------------------------------------------------------------------------------
// Header

function utf8Compare(a: string, b: string): number {
  // Rust compares String bytes; UTF-16 order differs for characters outside the BMP.
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function checkTensor(name: string, t: Tensor, source: string): void {
  if (!isDtype(t.dtype)) throw new SafetensorsError(source, `unknown dtype ${String(t.dtype)}`, name);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(source, `shape must be non-negative integers, got ${JSON.stringify(t.shape)}`, name);
  }
  const want = STORAGE_CTOR[t.dtype];
  if (t.data?.constructor?.name !== want) {
    throw new SafetensorsError(source, `${t.dtype} data must be a ${want}, got ${t.data?.constructor?.name}`, name);
  }
  const n = numElements(t.shape);
  if (t.data.length !== n) {
    throw new SafetensorsError(source, `shape [${t.shape}] has ${n} elements but the data has ${t.data.length}`, name);
  }
}

type TensorInput = Record<string, Tensor> | Map<string, Tensor>;

function entriesOf(tensors: TensorInput): [string, Tensor][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
}

interface Prepared {
  header: Uint8Array; // includes the 8-byte length
  ordered: [string, Tensor][];
  dataLength: number;
}

function prepare(tensors: TensorInput, metadata: Record<string, string> | undefined, source: string): Prepared {
  assertLittleEndian();
  const ordered = entriesOf(tensors);
  for (const [name, t] of ordered) {
    if (name === '__metadata__') throw new SafetensorsError(source, 'the name __metadata__ is reserved', name);
    checkTensor(name, t, source);
  }
  const rank = (d: Dtype): number => DTYPES.indexOf(d);
  ordered.sort(([an, a], [bn, b]) => rank(b.dtype) - rank(a.dtype) || utf8Compare(an, bn));
  let json = '{';
  const parts: string[] = [];
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort(utf8Compare);
    const meta = keys.map((k) => {
      const v = metadata[k];
      if (typeof v !== 'string') throw new SafetensorsError(source, `__metadata__ value of '${k}' must be a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${meta.join(',')}}`);
  }
  let offset = 0;
  for (const [name, t] of ordered) {
    const end = offset + t.data.byteLength;
    parts.push(`${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  json += parts.join(',') + '}';
  const body = Buffer.from(json, 'utf8');
  const padded = Math.ceil(body.length / 8) * 8;
  const header = new Uint8Array(8 + padded);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(body, 8);
  header.fill(0x20, 8 + body.length);
  return { header, ordered, dataLength: offset };
}

function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The whole file as bytes. For large sets prefer `writeSafetensorsFile`, which streams. */
export function serialize(tensors: TensorInput, metadata?: Record<string, string>): Uint8Array {
  const { header, ordered, dataLength } = prepare(tensors, metadata, '<buffer>');
  const out = new Uint8Array(header.length + dataLength);
  out.set(header, 0);
  let at = header.length;
  for (const [, t] of ordered) {
    out.set(bytesOf(t.data), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Parses and validates a header as the Rust reader does: valid UTF-8 JSON object, known
 * dtypes, integer shapes, offsets that tile the data section exactly, string metadata.
 */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, source: string): Header {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError(source, 'header is not valid UTF-8 (not a safetensors file?)');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(source, `header is not valid JSON (${(e as Error).message}); not a safetensors file, or a corrupt one`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new SafetensorsError(source, 'header is not a JSON object');
  }
  const metadata: Record<string, string> = {};
  const infos: [string, TensorInfo][] = [];
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new SafetensorsError(source, '__metadata__ must be an object of strings');
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new SafetensorsError(source, `__metadata__ value of '${k}' is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (v === null || typeof v !== 'object') throw new SafetensorsError(source, 'entry is not an object', name);
    if (!isDtype(v.dtype)) throw new SafetensorsError(source, `unknown dtype ${JSON.stringify(v.dtype)}`, name);
    const shape = v.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(source, `invalid shape ${JSON.stringify(shape)}`, name);
    }
    const off = v.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(source, `invalid data_offsets ${JSON.stringify(off)}`, name);
    }
    infos.push([name, { dtype: v.dtype, shape: shape as number[], dataOffsets: [off[0] as number, off[1] as number] }]);
  }
  // Any order in the JSON is accepted (older writers sorted by name); data must tile exactly.
  infos.sort(([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  const dataStart = 8 + headerBytes.length;
  const available = fileSize - dataStart;
  let expected = 0;
  for (const [name, info] of infos) {
    const [b, e] = info.dataOffsets;
    if (b !== expected || e < b) {
      throw new SafetensorsError(source, `data_offsets [${b}, ${e}] do not continue from byte ${expected} (overlap or hole)`, name);
    }
    const nbytes = numElements(info.shape) * DTYPE_SIZE[info.dtype];
    if (e - b !== nbytes) {
      throw new SafetensorsError(source, `${info.dtype} [${info.shape}] needs ${nbytes} bytes but data_offsets span ${e - b}`, name);
    }
    if (e > available) {
      throw new SafetensorsError(source, `truncated file: the tensor ends at data byte ${e} but only ${Math.max(available, 0)} data bytes exist`, name);
    }
    expected = e;
  }
  if (expected !== available) {
    throw new SafetensorsError(source, `${available - expected} unexpected bytes after the last tensor (corrupt file)`);
  }
  return { metadata, tensors: new Map(infos), dataStart, dataLength: expected };
}

function headerLength(first8: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8) {
    throw new SafetensorsError(source, `only ${fileSize} bytes: too short for a safetensors file (8-byte header length missing)`);
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) {
    throw new SafetensorsError(source, `header length ${n} exceeds the ${MAX_HEADER_SIZE}-byte limit (not a safetensors file?)`);
  }
  if (Number(n) + 8 > fileSize) {
    throw new SafetensorsError(source, `truncated file: header length ${n} runs past the end of the ${fileSize}-byte file`);
  }
  return Number(n);
}

export interface Deserialized {
  metadata: Record<string, string>;
  tensors: Map<string, Tensor>;
}

/** Parses a whole file held in memory. Tensor data is copied into aligned arrays. */
export function deserialize(bytes: Uint8Array, source = '<buffer>'): Deserialized {
  assertLittleEndian();
  const n = headerLength(bytes.subarray(0, 8), bytes.length, source);
  const header = parseHeader(bytes.subarray(8, 8 + n), bytes.length, source);
  const tensors = new Map<string, Tensor>();
  for (const [name, info] of header.tensors) {
    const [b, e] = info.dataOffsets;
    const data = typedFromBytes(info.dtype, bytes.subarray(header.dataStart + b, header.dataStart + e));
    tensors.set(name, { dtype: info.dtype, shape: info.shape, data });
  }
  return { metadata: header.metadata, tensors };
}

// ---------------------------------------------------------------------------------------
// Files

/**
 * Reads the header of a file on open and then only the tensors asked for, so a 100 MB
 * checkpoint can be inspected or partially loaded without reading all of it.
 */
export class SafetensorsReader {
  private constructor(
    readonly path: string,
    readonly header: Header,
    private fh: FileHandle | null,
  ) {}

  static async open(path: string): Promise<SafetensorsReader> {
    assertLittleEndian();
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const first = new Uint8Array(8);
      await readExactly(fh, first, 0, Math.min(8, size), path);
      const n = headerLength(first, size, path);
      const headerBytes = new Uint8Array(n);
      await readExactly(fh, headerBytes, 8, n, path);
      return new SafetensorsReader(path, parseHeader(headerBytes, size, path), fh);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  /** Tensor names in file (data) order. */
  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const info = this.header.tensors.get(name);
    if (!info) throw new SafetensorsError(this.path, 'not in this file', name);
    return info;
  }

  /** One tensor, in its stored dtype. */
  async read(name: string): Promise<Tensor> {
    if (!this.fh) throw new SafetensorsError(this.path, 'reader is closed', name);
    const info = this.info(name);
    const [b, e] = info.dataOffsets;
    const bytes = new Uint8Array(e - b);
    await readExactly(this.fh, bytes, this.header.dataStart + b, e - b, this.path, name);
    return { dtype: info.dtype, shape: info.shape, data: storageFor(info.dtype, bytes.buffer, 0, (e - b) / DTYPE_SIZE[info.dtype]) };
  }

  /** One tensor as float32 (F16/BF16 converted), the form the models consume. */
  async readFloat32(name: string): Promise<{ shape: number[]; data: Float32Array }> {
    const t = await this.read(name);
    return { shape: t.shape, data: toFloat32(t) };
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }
}

async function readExactly(
  fh: FileHandle,
  into: Uint8Array,
  position: number,
  length: number,
  path: string,
  tensor?: string,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(into, done, length - done, position + done);
    if (bytesRead === 0) {
      throw new SafetensorsError(path, `truncated file: wanted ${length} bytes at offset ${position}, got ${done}`, tensor);
    }
    done += bytesRead;
  }
}

/** Reads a whole file (header validated first, then each tensor). */
export async function readSafetensorsFile(path: string): Promise<Deserialized> {
  const reader = await SafetensorsReader.open(path);
  try {
    const tensors = new Map<string, Tensor>();
    for (const name of reader.names()) tensors.set(name, await reader.read(name));
    return { metadata: reader.metadata, tensors };
  } finally {
    await reader.close();
  }
}

/**
 * Writes tensors to `path` without concatenating them in memory. The file appears
 * atomically (written beside it, then renamed), so a killed writer never leaves half a file.
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: TensorInput,
  metadata?: Record<string, string>,
): Promise<void> {
  const { header, ordered } = prepare(tensors, metadata, path);
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.write(header);
    for (const [, t] of ordered) {
      const bytes = bytesOf(t.data);
      // FileHandle.write may write less than asked for very large buffers.
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
        done += bytesWritten;
      }
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
