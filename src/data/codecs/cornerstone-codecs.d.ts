// The cornerstone WebAssembly codecs ship no type declarations; this is the part of their
// Emscripten/embind API the decoders use (the same calls cornerstone's own image loader makes).
interface CornerstoneFrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
}

interface EmscriptenModuleOptions {
  print?: (text: string) => void;
  printErr?: (text: string) => void;
}

interface CornerstoneDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): CornerstoneFrameInfo;
  delete(): void;
}

declare module '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs' {
  const factory: (module?: EmscriptenModuleOptions) => Promise<{ JPEGDecoder: new () => CornerstoneDecoder }>;
  export default factory;
}

declare module '@cornerstonejs/codec-charls/decodewasmjs' {
  const factory: (module?: EmscriptenModuleOptions) => Promise<{ JpegLSDecoder: new () => CornerstoneDecoder & { getNearLossless(): number } }>;
  export default factory;
}

declare module '@cornerstonejs/codec-openjpeg/decodewasmjs' {
  const factory: (module?: EmscriptenModuleOptions) => Promise<{ J2KDecoder: new () => CornerstoneDecoder & { getIsReversible(): boolean } }>;
  export default factory;
}
