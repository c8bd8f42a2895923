// Decoders for one encapsulated DICOM frame, one per family of compressed transfer syntaxes.
// Each codec (a WebAssembly build for the cornerstone viewers, cornerstone's JPEG-lossless
// decoder, or dcmjs-codecs for 12-bit JPEG) is imported, and its module compiled, only the first
// time a file needs it, so a run over PNGs or uncompressed DICOM never loads one. RLE is decoded here: PS3.5 Annex G is a
// PackBits variant of a few dozen lines, and no maintained package ships it on its own.
import { CodecError, type FrameSpec, type Samples } from './frame.js';
import { decodeRle } from './rle.js';

export type CodecFamily = 'jpeg-baseline' | 'jpeg-lossless' | 'jpeg-ls' | 'jpeg-2000' | 'rle';

type Decode = (frame: Uint8Array, spec: FrameSpec) => Promise<Samples>;

const DECODERS: Readonly<Record<CodecFamily, Decode>> = {
  'jpeg-baseline': decodeJpegBaseline,
  'jpeg-lossless': decodeJpegLossless,
  'jpeg-ls': decodeJpegLs,
  'jpeg-2000': decodeJpeg2000,
  rle: async (frame, spec) => decodeRle(frame, spec),
};

export function decodeFrame(family: CodecFamily, frame: Uint8Array, spec: FrameSpec): Promise<Samples> {
  return DECODERS[family](frame, spec);
}

type Factory<M> = (module?: EmscriptenModuleOptions) => Promise<M>;

/** OpenJPEG prints its progress ("[INFO] Main header has been correctly decoded") to stdout. */
const QUIET: EmscriptenModuleOptions = { print: () => {}, printErr: () => {} };

function lazy<M>(load: () => Promise<{ default: Factory<M> }>): () => Promise<M> {
  let instance: Promise<M> | undefined;
  return () => (instance ??= load().then((m) => m.default(QUIET)));
}

const libjpegTurbo = lazy(() => import('@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs'));
const charls = lazy(() => import('@cornerstonejs/codec-charls/decodewasmjs'));
const openjpeg = lazy(() => import('@cornerstonejs/codec-openjpeg/decodewasmjs'));

/** Runs one embind decoder and copies its output out of the WebAssembly heap before freeing it. */
function runDecoder(codec: string, decoder: CornerstoneDecoder, frame: Uint8Array, spec: FrameSpec): Samples {
  try {
    decoder.getEncodedBuffer(frame.length).set(frame);
    try {
      decoder.decode();
    } catch (e) {
      // Emscripten surfaces a C++ exception as a bare pointer; its text is not recoverable.
      throw new CodecError(`${codec} could not decode the frame (corrupt or unsupported data${typeof e === 'number' ? '' : `: ${String(e)}`})`);
    }
    const info = decoder.getFrameInfo();
    // OpenJPEG reports a stream it cannot read by decoding nothing rather than by throwing.
    if (info.componentCount === 0 || info.width === 0) throw new CodecError(`${codec} could not decode the frame (corrupt or unsupported data)`);
    if (info.componentCount !== 1) throw new CodecError(`${codec} decoded ${info.componentCount} components; only monochrome is supported`);
    checkSize(codec, info.width, info.height, spec);
    const decoded = decoder.getDecodedBuffer();
    return samplesOf(new Uint8Array(decoded), info.bitsPerSample, spec);
  } finally {
    decoder.delete();
  }
}

function checkSize(codec: string, width: number, height: number, spec: FrameSpec): void {
  if (width !== spec.columns || height !== spec.rows) {
    throw new CodecError(`${codec} decoded a ${width}x${height} frame, but the data set says ${spec.columns}x${spec.rows}`);
  }
}

/** Codec output bytes (8-bit, or 16-bit little-endian as WebAssembly writes them) as samples. */
function samplesOf(bytes: Uint8Array, bitsPerSample: number, spec: FrameSpec): Samples {
  const n = spec.rows * spec.columns;
  if (bitsPerSample > spec.bitsAllocated) throw new CodecError(`decoded ${bitsPerSample}-bit samples, but BitsAllocated is ${spec.bitsAllocated}`);
  if (bitsPerSample <= 8) {
    if (bytes.length < n) throw new CodecError(`decoded ${bytes.length} bytes for ${n} pixels`);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, n);
  }
  if (bytes.length < 2 * n) throw new CodecError(`decoded ${bytes.length} bytes for ${n} 16-bit pixels`);
  return spec.signed ? new Int16Array(bytes.buffer, bytes.byteOffset, n) : new Uint16Array(bytes.buffer, bytes.byteOffset, n);
}

async function decodeJpegBaseline(frame: Uint8Array, spec: FrameSpec): Promise<Samples> {
  const header = jpegFrameHeader(frame);
  if (header !== undefined && header.precision > 8) return decodeJpeg12(frame, header, spec);
  const codec = await libjpegTurbo();
  return runDecoder('libjpeg-turbo', new codec.JPEGDecoder(), frame, spec);
}

type DcmjsCodecs = typeof import('dcmjs-codecs');
let dcmjsCodecs: Promise<DcmjsCodecs> | undefined;

/** dcmjs-codecs with its WebAssembly instantiated; a failed load is not kept, so it is retried. */
function loadDcmjsCodecs(): Promise<DcmjsCodecs> {
  dcmjsCodecs ??= import('dcmjs-codecs')
    .then(async (m) => {
      await m.default.NativeCodecs.initializeAsync();
      return m.default;
    })
    .catch((e: unknown) => {
      dcmjsCodecs = undefined;
      throw e;
    });
  return dcmjsCodecs;
}

/**
 * 12-bit JPEG Extended (Process 4) through dcmjs-codecs, whose WebAssembly holds the IJG 6b
 * 12-bit library that dcmtk's own dcmdjpeg uses: libjpeg-turbo's cornerstone build has 8-bit
 * samples only.
 */
async function decodeJpeg12(frame: Uint8Array, header: JpegFrameHeader, spec: FrameSpec): Promise<Samples> {
  const { precision } = header;
  if (precision > 12) throw new CodecError(`a lossy JPEG stream with ${precision}-bit samples (JPEG Extended allows 8 or 12)`);
  // The library takes the geometry from the stream; checked first, as the other codecs' output is.
  if (header.components !== 1) throw new CodecError(`IJG 12-bit JPEG: the stream has ${header.components} components; only monochrome is supported`);
  checkSize('IJG 12-bit JPEG', header.width, header.height, spec);
  if (spec.bitsAllocated !== 16) throw new CodecError(`a ${precision}-bit JPEG stream needs BitsAllocated 16, but it is ${spec.bitsAllocated}`);
  // IJG decodes a stream cut short as if it ended there (a warning it keeps to itself), so a
  // truncated fragment would become grey rows rather than an error.
  if (!endsWithEoi(frame)) throw new CodecError('the JPEG stream has no end-of-image marker (truncated?)');
  const { Context, NativeCodecs } = await loadDcmjsCodecs();
  const context = new Context({
    width: spec.columns,
    height: spec.rows,
    bitsAllocated: 16,
    bitsStored: precision,
    samplesPerPixel: 1,
    pixelRepresentation: spec.signed ? 1 : 0,
    photometricInterpretation: 'MONOCHROME2',
    encodedBuffer: frame,
  });
  let decoded: Uint8Array | undefined;
  try {
    decoded = NativeCodecs.decodeJpeg(context).getDecodedBuffer();
  } catch (e) {
    // The library reports a C++ error by throwing through the WebAssembly frames, which leaves
    // the module's stack pointer and heap where the failed call had them: after about 30 such
    // frames every decode faulted ("memory access out of bounds"). The next frame gets a fresh instance.
    dcmjsCodecs = undefined;
    throw new CodecError(`IJG 12-bit JPEG (dcmjs-codecs) could not decode the frame: ${e instanceof Error ? e.message : String(e)}`);
  }
  const n = spec.rows * spec.columns;
  if (decoded === undefined || decoded.length !== 2 * n) {
    throw new CodecError(`IJG 12-bit JPEG decoded ${decoded?.length ?? 0} bytes, but the data set says ${spec.columns}x${spec.rows} 16-bit pixels (${2 * n} bytes)`);
  }
  // A copy: the view the library returns may not be 2-byte aligned.
  return samplesOf(new Uint8Array(decoded), precision, spec);
}

/** Whether the stream ends in EOI (FFD9), ignoring the zero bytes that pad a DICOM fragment. */
function endsWithEoi(frame: Uint8Array): boolean {
  let end = frame.length;
  while (end > 0 && frame[end - 1] === 0) end--;
  return end >= 2 && frame[end - 2] === 0xff && frame[end - 1] === 0xd9;
}

async function decodeJpegLs(frame: Uint8Array, spec: FrameSpec): Promise<Samples> {
  const codec = await charls();
  return runDecoder('CharLS', new codec.JpegLSDecoder(), frame, spec);
}

async function decodeJpeg2000(frame: Uint8Array, spec: FrameSpec): Promise<Samples> {
  const codec = await openjpeg();
  return runDecoder('OpenJPEG', new codec.J2KDecoder(), frame, spec);
}

type LosslessModule = typeof import('@cornerstonejs/jpeg-lossless-decoder-js');
let lossless: Promise<LosslessModule> | undefined;

async function decodeJpegLossless(frame: Uint8Array, spec: FrameSpec): Promise<Samples> {
  lossless ??= import('@cornerstonejs/jpeg-lossless-decoder-js');
  const { Decoder } = await lossless;
  const decoder = new Decoder();
  const bytesPer = spec.bitsAllocated <= 8 ? 1 : 2;
  let out: Uint8Array | Uint16Array;
  try {
    // A copy that owns its buffer: the frame may be a view into the whole file.
    const copy = new Uint8Array(frame);
    out = decoder.decode(copy.buffer, 0, copy.length, bytesPer);
  } catch (e) {
    throw new CodecError(`JPEG lossless decoder failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (decoder.numComp !== 1) throw new CodecError(`JPEG lossless decoded ${decoder.numComp} components; only monochrome is supported`);
  checkSize('JPEG lossless', decoder.xDim, decoder.yDim, spec);
  const n = spec.rows * spec.columns;
  if (out.length < n) throw new CodecError(`JPEG lossless decoded ${out.length} samples for ${n} pixels (truncated stream?)`);
  if (out instanceof Uint16Array && spec.signed) return new Int16Array(out.buffer, out.byteOffset, n);
  return out.subarray(0, n);
}

interface JpegFrameHeader {
  precision: number;
  height: number;
  width: number;
  components: number;
}

/** The first SOF marker's fields, or undefined when there is none. */
export function jpegFrameHeader(frame: Uint8Array): JpegFrameHeader | undefined {
  for (let i = 2; i + 9 < frame.length; ) {
    if (frame[i] !== 0xff) return undefined;
    const marker = frame[i + 1];
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { precision: frame[i + 4], height: (frame[i + 5] << 8) | frame[i + 6], width: (frame[i + 7] << 8) | frame[i + 8], components: frame[i + 9] };
    }
    i += 2 + ((frame[i + 2] << 8) | frame[i + 3]);
  }
  return undefined;
}
